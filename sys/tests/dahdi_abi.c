/* Prints the ioctl request numbers and struct sizes of DAHDI's real header, one
 * "name value" per line, for tests/dahdi_abi.rs to compare with hotline-sys. */
#include <stdio.h>
#include <dahdi/user.h>

#define REQ(name) printf("%s %lu\n", #name, (unsigned long)(name))
#define SIZE(type) printf("%s %lu\n", #type, (unsigned long)sizeof(struct type))

int main(void)
{
	REQ(DAHDI_GET_BLOCKSIZE);
	REQ(DAHDI_SET_BLOCKSIZE);
	REQ(DAHDI_GET_PARAMS);
	REQ(DAHDI_HOOK);
	REQ(DAHDI_GETEVENT);
	REQ(DAHDI_SPANSTAT);
	REQ(DAHDI_GETCONF);
	REQ(DAHDI_SETCONF);
	REQ(DAHDI_CONFLINK);
	REQ(DAHDI_GETGAINS);
	REQ(DAHDI_SETGAINS);
	REQ(DAHDI_GET_BUFINFO);
	REQ(DAHDI_SET_BUFINFO);
	REQ(DAHDI_DIAL);
	REQ(DAHDI_SPECIFY);
	REQ(DAHDI_SETLAW);
	REQ(DAHDI_SETLINEAR);
	REQ(DAHDI_SETCADENCE);
	SIZE(dahdi_params);
	SIZE(dahdi_bufferinfo);
	SIZE(dahdi_confinfo);
	SIZE(dahdi_spaninfo);
	SIZE(dahdi_gains);
	SIZE(dahdi_dialoperation);
	SIZE(dahdi_ring_cadence);
	return 0;
}
