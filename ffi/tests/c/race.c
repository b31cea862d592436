/*
 * race.c: several threads on one connection at once, built with AddressSanitizer or
 * ThreadSanitizer (ffi/tests/c_example.rs). Against a running link server:
 *
 *   ./race HOST PORT AGENT PASSWORD STATION
 *
 * 1. Four threads make requests on one connection while another replaces the
 *    callback and the event filter, and the callback counts events.
 * 2. Three threads request in a loop while the main thread disconnects: every
 *    thread ends with HOTLINE_RESULT_CLOSED, none crashes or hangs.
 * 3. Poll mode: one thread waits on the event descriptor with select() and calls
 *    hotline_dispatch while another thread makes requests (the server's Stats events,
 *    about one a second, are what is dispatched for sure).
 *
 * Prints "race: ok" and exits 0 when every check passed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "hotline.h"

static const char *host, *agent, *password, *station;
static uint16_t port;

static int failures = 0;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

static void failed(const char *what, hotline_result r, int line) {
    char msg[128];
    hotline_result_message(r, msg, sizeof msg);
    pthread_mutex_lock(&fail_lock);
    failures++;
    printf("FAILED (line %d): %s: %s (%u)\n", line, what, msg, (unsigned)r);
    pthread_mutex_unlock(&fail_lock);
}

#define EXPECT(call, ok_if)                                                             \
    do {                                                                                \
        hotline_result r_ = (call);                                                     \
        if (!(ok_if)) {                                                                 \
            failed(#call, r_, __LINE__);                                                \
        }                                                                               \
    } while (0)

struct counter {
    pthread_mutex_t lock;
    long events;
    long disconnected;
};

static void count(void *user_data, const hotline_event *ev) {
    struct counter *c = user_data;
    pthread_mutex_lock(&c->lock);
    c->events++;
    if (ev->kind == HOTLINE_EVENT_KIND_DISCONNECTED) {
        c->disconnected++;
    }
    /* Read every string the event has, so a sanitizer sees a bad pointer. */
    const char *fields[] = {ev->name, ev->device, ev->calling, ev->called, ev->agent, ev->state,
                            ev->reason, ev->time, ev->json};
    size_t total = 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        total += fields[i] ? strlen(fields[i]) : 0;
    }
    (void)total;
    pthread_mutex_unlock(&c->lock);
}

static void count_too(void *user_data, const hotline_event *ev) {
    count(user_data, ev);
}

static hotline_conn *open_conn(struct counter *c) {
    hotline_conn *conn = NULL;
    hotline_result r = hotline_connect(host, port, &conn);
    if (r != HOTLINE_RESULT_OK) {
        failed("connect", r, __LINE__);
        exit(1);
    }
    EXPECT(hotline_set_callback(conn, count, c), r_ == HOTLINE_RESULT_OK);
    /* A login can take seconds on a busy server (more with an Argon2 password hash). */
    EXPECT(hotline_set_timeout(conn, 30000), r_ == HOTLINE_RESULT_OK);
    EXPECT(hotline_login(conn, agent, password, station), r_ == HOTLINE_RESULT_OK);
    return conn;
}

/* A request that the rate limit may refuse but nothing else. */
static int fine(hotline_result r) {
    return r == HOTLINE_RESULT_OK || r == HOTLINE_RESULT_RATE_LIMITED;
}

struct job {
    hotline_conn *conn;
    struct counter *counter;
    int n;
    hotline_result last;
};

static void *requester(void *arg) {
    struct job *j = arg;
    char buf[2048];
    for (int i = 0; i < j->n; i++) {
        switch (i % 4) {
        case 0:
            EXPECT(hotline_request(j->conn, "Ping", NULL, buf, sizeof buf, NULL), fine(r_));
            break;
        case 1:
            EXPECT(hotline_get_agent_state(j->conn, NULL, buf, sizeof buf, NULL), fine(r_));
            break;
        case 2:
            EXPECT(hotline_snapshot_device(j->conn, NULL, buf, sizeof buf, NULL), fine(r_));
            break;
        default:
            EXPECT(hotline_set_agent_state(j->conn, NULL,
                                           (i / 4) % 2 ? HOTLINE_AGENT_STATE_READY
                                                       : HOTLINE_AGENT_STATE_NOT_READY,
                                           (i / 4) % 2 ? NULL : "race"),
                   fine(r_));
        }
    }
    return NULL;
}

static void *switcher(void *arg) {
    struct job *j = arg;
    for (int i = 0; i < j->n; i++) {
        EXPECT(hotline_set_callback(j->conn, i % 2 ? count : count_too, j->counter),
               r_ == HOTLINE_RESULT_OK);
        EXPECT(hotline_set_event_filter(j->conn, i % 3 ? HOTLINE_EVENTS_ALL
                                                       : ~(UINT64_C(1) << HOTLINE_EVENT_KIND_STATS)),
               r_ == HOTLINE_RESULT_OK);
        char text[64];
        hotline_last_error(j->conn, text, sizeof text, NULL);
    }
    return NULL;
}

/* Requests until the connection is closed under it. */
static void *until_closed(void *arg) {
    struct job *j = arg;
    char buf[256];
    for (;;) {
        hotline_result r = hotline_request(j->conn, "Ping", NULL, buf, sizeof buf, NULL);
        if (r == HOTLINE_RESULT_CLOSED) {
            j->last = r;
            return NULL;
        }
        if (!fine(r)) {
            failed("request while disconnecting", r, __LINE__);
            j->last = r;
            return NULL;
        }
    }
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static void *poller(void *arg) {
    struct job *j = arg;
    int fd = -1;
    EXPECT(hotline_event_fd(j->conn, &fd), r_ == HOTLINE_RESULT_OK);
    for (;;) {
        fd_set set;
        FD_ZERO(&set);
        FD_SET(fd, &set);
        struct timeval tv = {5, 0};
        int ready = select(fd + 1, &set, NULL, NULL, &tv);
        if (ready <= 0) {
            failed("select on the event descriptor timed out", HOTLINE_RESULT_TIMEOUT, __LINE__);
            return NULL;
        }
        size_t n = 0;
        hotline_result r = hotline_dispatch(j->conn, 0, &n);
        if (r == HOTLINE_RESULT_CLOSED) {
            return NULL;
        }
        if (r != HOTLINE_RESULT_OK) {
            failed("dispatch", r, __LINE__);
            return NULL;
        }
        pthread_mutex_lock(&j->counter->lock);
        int done = j->counter->disconnected > 0;
        pthread_mutex_unlock(&j->counter->lock);
        if (done) {
            return NULL;
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s HOST PORT AGENT PASSWORD STATION\n", argv[0]);
        return 2;
    }
    host = argv[1];
    port = (uint16_t)strtol(argv[2], NULL, 10);
    agent = argv[3];
    password = argv[4];
    station = argv[5];
    if (hotline_abi_version() != HOTLINE_ABI_VERSION) {
        fprintf(stderr, "race: built for ABI %u, the library is %u\n", HOTLINE_ABI_VERSION,
                hotline_abi_version());
        return 1;
    }

    /* 1. Requests from four threads, callback and filter replaced meanwhile. */
    struct counter c1 = {.events = 0};
    pthread_mutex_init(&c1.lock, NULL);
    hotline_conn *conn = open_conn(&c1);
    EXPECT(hotline_monitor(conn, HOTLINE_MONITOR_TARGET_AGENT, agent, NULL), r_ == HOTLINE_RESULT_OK);
    pthread_t t[6];
    struct job jobs[6];
    for (int i = 0; i < 5; i++) {
        jobs[i] = (struct job){.conn = conn, .counter = &c1, .n = i < 4 ? 16 : 200};
        pthread_create(&t[i], NULL, i < 4 ? requester : switcher, &jobs[i]);
    }
    for (int i = 0; i < 5; i++) {
        pthread_join(t[i], NULL);
    }
    EXPECT(hotline_free(conn), r_ == HOTLINE_RESULT_OK);
    pthread_mutex_lock(&c1.lock);
    printf("phase 1: %ld events, %ld disconnected\n", c1.events, c1.disconnected);
    if (c1.disconnected != 1) {
        failed("exactly one DISCONNECTED after free", HOTLINE_RESULT_OK, __LINE__);
    }
    pthread_mutex_unlock(&c1.lock);

    /* 2. Disconnect under three requesting threads. */
    struct counter c2 = {.events = 0};
    pthread_mutex_init(&c2.lock, NULL);
    conn = open_conn(&c2);
    for (int i = 0; i < 3; i++) {
        jobs[i] = (struct job){.conn = conn, .counter = &c2, .last = HOTLINE_RESULT_OK};
        pthread_create(&t[i], NULL, until_closed, &jobs[i]);
    }
    sleep_ms(50);
    EXPECT(hotline_disconnect(conn), r_ == HOTLINE_RESULT_OK);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        if (jobs[i].last != HOTLINE_RESULT_CLOSED) {
            failed("a thread did not end with CLOSED", jobs[i].last, __LINE__);
        }
    }
    EXPECT(hotline_hold(conn, 1, NULL), r_ == HOTLINE_RESULT_CLOSED);
    EXPECT(hotline_free(conn), r_ == HOTLINE_RESULT_OK);
    printf("phase 2: every thread got CLOSED\n");

    /* 3. Poll mode: select() + hotline_dispatch on one thread, requests on another. */
    struct counter c3 = {.events = 0};
    pthread_mutex_init(&c3.lock, NULL);
    conn = open_conn(&c3);
    jobs[0] = (struct job){.conn = conn, .counter = &c3};
    /* The descriptor first, so that no event goes to the callback thread. */
    int fd = -1;
    EXPECT(hotline_event_fd(conn, &fd), r_ == HOTLINE_RESULT_OK);
    pthread_create(&t[0], NULL, poller, &jobs[0]);
    EXPECT(hotline_monitor(conn, HOTLINE_MONITOR_TARGET_AGENT, agent, NULL), r_ == HOTLINE_RESULT_OK);
    jobs[1] = (struct job){.conn = conn, .counter = &c3, .n = 16};
    requester(&jobs[1]);
    /* The server pushes Stats to every logged-in connection about once a second. */
    sleep_ms(1500);
    EXPECT(hotline_disconnect(conn), r_ == HOTLINE_RESULT_OK);
    pthread_join(t[0], NULL);
    pthread_mutex_lock(&c3.lock);
    printf("phase 3: %ld events dispatched, %ld disconnected\n", c3.events, c3.disconnected);
    if (c3.events < 2 || c3.disconnected != 1) {
        failed("poll mode delivered the state events and DISCONNECTED", HOTLINE_RESULT_OK, __LINE__);
    }
    pthread_mutex_unlock(&c3.lock);
    EXPECT(hotline_free(conn), r_ == HOTLINE_RESULT_OK);

    pthread_mutex_destroy(&c1.lock);
    pthread_mutex_destroy(&c2.lock);
    pthread_mutex_destroy(&c3.lock);
    if (failures == 0) {
        printf("race: ok\n");
        return 0;
    }
    printf("race: %d failed\n", failures);
    return 1;
}
