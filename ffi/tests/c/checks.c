/*
 * checks.c: the C-level rules of libhotline against a running link server: NULL and
 * stale handles are refused with a code, outputs are written only on success, a
 * refusal keeps the server's text, a closed connection says so, messages truncate.
 *
 *   ./checks HOST PORT AGENT     (prints one line per check; exit 0 when all pass)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotline.h"

static int failures = 0;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (cond) {                                                                     \
            printf("ok: %s\n", #cond);                                                  \
        } else {                                                                        \
            printf("FAILED (line %d): %s\n", __LINE__, #cond);                          \
            failures++;                                                                 \
        }                                                                               \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s HOST PORT AGENT\n", argv[0]);
        return 2;
    }
    const char *host = argv[1], *agent = argv[3];
    uint16_t port = (uint16_t)strtol(argv[2], NULL, 10);

    /* NULL pointers. */
    hotline_conn *conn = NULL;
    CHECK(hotline_connect(NULL, port, &conn) == HOTLINE_RESULT_NULL_PARAMETER);
    CHECK(conn == NULL);
    CHECK(hotline_connect(host, port, NULL) == HOTLINE_RESULT_NULL_PARAMETER);
    CHECK(hotline_answer(NULL, 1, NULL) == HOTLINE_RESULT_NULL_PARAMETER);
    CHECK(hotline_free(NULL) == HOTLINE_RESULT_NULL_PARAMETER);

    /* A freed handle is stale: every use is refused, including a second free. */
    hotline_conn *stale = NULL;
    CHECK(hotline_connect(host, port, &stale) == HOTLINE_RESULT_OK);
    CHECK(hotline_free(stale) == HOTLINE_RESULT_OK);
    CHECK(hotline_answer(stale, 1, "station:2001") == HOTLINE_RESULT_INVALID_HANDLE);
    CHECK(hotline_login(stale, agent, "x", NULL) == HOTLINE_RESULT_INVALID_HANDLE);
    CHECK(hotline_set_callback(stale, NULL, NULL) == HOTLINE_RESULT_INVALID_HANDLE);
    char text[256];
    CHECK(hotline_last_error(stale, text, sizeof text, NULL) == HOTLINE_RESULT_INVALID_HANDLE);
    CHECK(hotline_disconnect(stale) == HOTLINE_RESULT_INVALID_HANDLE);
    CHECK(hotline_free(stale) == HOTLINE_RESULT_INVALID_HANDLE);

    /* A live connection: refusals by the library and by the server. */
    CHECK(hotline_connect(host, port, &conn) == HOTLINE_RESULT_OK);
    /* A login can take seconds on a busy server (more with an Argon2 password hash). */
    CHECK(hotline_set_timeout(conn, 30000) == HOTLINE_RESULT_OK);
    CHECK(hotline_answer(conn, 1, NULL) == HOTLINE_RESULT_NOT_LOGGED_IN);
    CHECK(hotline_set_agent_state(conn, agent, 42, NULL) == HOTLINE_RESULT_INVALID_ARGUMENT);
    CHECK(hotline_login(conn, agent, "wrong password", NULL) == HOTLINE_RESULT_INVALID_PASSWORD);
    size_t n = 0;
    CHECK(hotline_last_error(conn, text, sizeof text, &n) == HOTLINE_RESULT_OK);
    CHECK(strncmp(text, "invalid_password", 16) == 0);
    CHECK(n == strlen(text));
    printf("  (server said: %s)\n", text);
    /* Only Login and Ping are served before a login. */
    CHECK(hotline_request(conn, "Ping", NULL, text, sizeof text, &n) == HOTLINE_RESULT_OK);
    CHECK(strstr(text, "\"time\"") != NULL);
    CHECK(hotline_request(conn, "SnapshotAgents", NULL, text, sizeof text, &n) ==
          HOTLINE_RESULT_NOT_LOGGED_IN);
    uint64_t monitor = 77;
    CHECK(hotline_monitor(conn, HOTLINE_MONITOR_TARGET_ALL, NULL, &monitor) ==
          HOTLINE_RESULT_NOT_LOGGED_IN);
    CHECK(monitor == 77); /* outputs are written only on success */

    /* A closed connection refuses requests but its handle stays valid until freed. */
    CHECK(hotline_disconnect(conn) == HOTLINE_RESULT_OK);
    CHECK(hotline_request(conn, "Ping", NULL, text, sizeof text, &n) == HOTLINE_RESULT_CLOSED);
    CHECK(hotline_disconnect(conn) == HOTLINE_RESULT_OK);
    CHECK(hotline_free(conn) == HOTLINE_RESULT_OK);

    /* Messages: snprintf-like truncation, any number accepted. */
    char small[8];
    size_t full = hotline_result_message(HOTLINE_RESULT_INVALID_HANDLE, small, sizeof small);
    CHECK(full > sizeof small - 1);
    CHECK(strlen(small) == sizeof small - 1);
    CHECK(hotline_result_message(123456, text, sizeof text) > 0);
    printf("  (123456 is: %s)\n", text);

    printf("%d failed\n", failures);
    return failures == 0 ? 0 : 1;
}
