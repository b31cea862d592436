/*
 * crm.c: a minimal CRM on libhotline.
 *
 * Connects to a Hotline link server, logs in as an agent at a station, goes ready,
 * waits for a screen pop, prints it, answers the call and exits once the call is
 * established at the station.
 *
 *   cc -Wall -Wextra -Iffi/include ffi/examples/crm.c -Ltarget/debug -lhotline -lpthread
 *   ./a.out 127.0.0.1 7001 1001 secret 2001 [--poll]
 *
 * against `hotline serve --config ffi/examples/center.toml` (a simulated call center
 * with one scripted caller; docs/c-api.md, "Running crm.c against hotline serve").
 *
 * The callback runs on libhotline's callback thread, so it only copies what it needs
 * under a mutex and wakes the main thread, which does the requests. (Requests from
 * the callback are allowed too; see docs/c-api.md.)
 *
 * With --poll it runs single-threaded instead, as a CRM with its own event loop would:
 * the callback is called from hotline_dispatch on the main thread whenever select()
 * says the library's event descriptor is readable.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "hotline.h"

/* What the callback hands to the main thread. */
struct crm {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    char station[64];      /* "station:2001" */
    uint64_t popped_call;  /* the call of the first screen pop, 0 before */
    uint64_t answered_call;
    int disconnected;
    hotline_conn *conn;    /* set in poll mode: wait_for dispatches events itself */
    int fd;
};

static void on_event(void *user_data, const hotline_event *ev) {
    struct crm *crm = user_data;
    pthread_mutex_lock(&crm->lock);
    switch (ev->kind) {
    case HOTLINE_EVENT_KIND_SCREEN_POP:
        if (crm->popped_call == 0) {
            /* Every string may be NULL when the server did not send it. */
            printf("screen pop: call %" PRIu64 " from %s to %s (%s)%s\n", ev->call,
                   ev->calling ? ev->calling : "unknown number",
                   ev->access_number ? ev->access_number : "?",
                   ev->location ? ev->location : "location unknown",
                   ev->vip ? " VIP" : "");
            printf("  ivr data: %s\n", ev->ivr_data_json ? ev->ivr_data_json : "{}");
            printf("  attached: %s\n", ev->attached_json ? ev->attached_json : "{}");
            printf("  previous contacts: %s\n",
                   ev->previous_contacts_json ? ev->previous_contacts_json : "[]");
            fflush(stdout);
            crm->popped_call = ev->call;
        }
        break;
    case HOTLINE_EVENT_KIND_ESTABLISHED:
        if (ev->device && strcmp(ev->device, crm->station) == 0) {
            crm->answered_call = ev->call;
        }
        break;
    case HOTLINE_EVENT_KIND_DISCONNECTED:
        fprintf(stderr, "crm: disconnected: %s\n", ev->reason ? ev->reason : "?");
        crm->disconnected = 1;
        break;
    default:
        break;
    }
    pthread_cond_broadcast(&crm->changed);
    pthread_mutex_unlock(&crm->lock);
}

/* Print what failed, with the library's message and the server's text. */
static int fail(hotline_conn *conn, const char *what, hotline_result r) {
    char msg[128], detail[256];
    hotline_result_message(r, msg, sizeof msg);
    detail[0] = '\0';
    if (conn) {
        hotline_last_error(conn, detail, sizeof detail, NULL);
    }
    fprintf(stderr, "crm: %s: %s (%u)%s%s\n", what, msg, (unsigned)r, detail[0] ? ": " : "",
            detail);
    return 1;
}

/* Poll mode: select() on the library's descriptor and dispatch what waits, until
 * *field is set, the connection ends or `seconds` pass. */
static int pump_for(struct crm *crm, uint64_t *field, int seconds) {
    time_t until = time(NULL) + seconds;
    while (*field == 0 && !crm->disconnected && time(NULL) < until) {
        fd_set set;
        FD_ZERO(&set);
        FD_SET(crm->fd, &set);
        struct timeval tv = {1, 0};
        if (select(crm->fd + 1, &set, NULL, NULL, &tv) > 0) {
            hotline_result r = hotline_dispatch(crm->conn, 0, NULL);
            if (r != HOTLINE_RESULT_OK) {
                fail(crm->conn, "dispatch", r);
                return 0;
            }
        }
    }
    return *field != 0;
}

/* Wait until *field is set (or the connection ends), at most `seconds`. */
static int wait_for(struct crm *crm, uint64_t *field, int seconds) {
    if (crm->conn) {
        return pump_for(crm, field, seconds);
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    int err = 0;
    pthread_mutex_lock(&crm->lock);
    while (*field == 0 && !crm->disconnected && err != ETIMEDOUT) {
        err = pthread_cond_timedwait(&crm->changed, &crm->lock, &until);
    }
    int ok = *field != 0;
    pthread_mutex_unlock(&crm->lock);
    return ok;
}

int main(int argc, char **argv) {
    int poll_mode = argc == 7 && strcmp(argv[6], "--poll") == 0;
    if (argc != 6 && !poll_mode) {
        fprintf(stderr, "usage: %s HOST PORT AGENT PASSWORD STATION [--poll]\n", argv[0]);
        return 2;
    }
    if (hotline_abi_version() != HOTLINE_ABI_VERSION) {
        fprintf(stderr, "crm: built for libhotline ABI %u, found %u\n", HOTLINE_ABI_VERSION,
                hotline_abi_version());
        return 2;
    }
    const char *host = argv[1], *agent = argv[3], *password = argv[4], *ext = argv[5];
    long port = strtol(argv[2], NULL, 10);
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "crm: bad port %s\n", argv[2]);
        return 2;
    }

    struct crm crm = {.popped_call = 0};
    pthread_mutex_init(&crm.lock, NULL);
    pthread_cond_init(&crm.changed, NULL);
    snprintf(crm.station, sizeof crm.station, "station:%s", ext);

    hotline_conn *conn = NULL;
    hotline_result r = hotline_connect(host, (uint16_t)port, &conn);
    if (r != HOTLINE_RESULT_OK) {
        return fail(NULL, "connect", r);
    }
    printf("connected to %s:%ld (libhotline %s)\n", host, port, hotline_version());

    int status = 1;
    /* A login can take seconds on a busy server (more with an Argon2 password hash). */
    hotline_set_timeout(conn, 30000);
    if (poll_mode) {
        /* Before the login, so that every event waits for hotline_dispatch. */
        if ((r = hotline_event_fd(conn, &crm.fd)) != HOTLINE_RESULT_OK) {
            fail(conn, "event fd", r);
            hotline_free(conn);
            return 1;
        }
        crm.conn = conn;
    }
    /* Set the callback before logging in so that no event is missed. */
    if ((r = hotline_set_callback(conn, on_event, &crm)) != HOTLINE_RESULT_OK) {
        fail(conn, "set callback", r);
    } else if ((r = hotline_login(conn, agent, password, ext)) != HOTLINE_RESULT_OK) {
        fail(conn, "login", r);
    } else if ((r = hotline_monitor(conn, HOTLINE_MONITOR_TARGET_AGENT, agent, NULL)) !=
               HOTLINE_RESULT_OK) {
        fail(conn, "monitor", r);
    } else if ((r = hotline_set_agent_state(conn, NULL, HOTLINE_AGENT_STATE_READY, NULL)) !=
               HOTLINE_RESULT_OK) {
        fail(conn, "ready", r);
    } else {
        printf("agent %s ready at %s\n", agent, crm.station);
        fflush(stdout);
        if (!wait_for(&crm, &crm.popped_call, 30)) {
            fprintf(stderr, "crm: no screen pop within 30 s\n");
        } else if ((r = hotline_answer(conn, crm.popped_call, NULL)) != HOTLINE_RESULT_OK) {
            fail(conn, "answer", r);
        } else if (!wait_for(&crm, &crm.answered_call, 10)) {
            fprintf(stderr, "crm: the call was not established at %s\n", crm.station);
        } else {
            printf("answered call %" PRIu64 "\n", crm.answered_call);
            status = 0;
        }
    }

    /* Frees the handle after the last callback has returned. */
    hotline_free(conn);
    pthread_cond_destroy(&crm.changed);
    pthread_mutex_destroy(&crm.lock);
    return status;
}
