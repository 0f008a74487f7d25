#define _POSIX_C_SOURCE 200112L
/* The transport benchmark's reference: the same patterns as `rlaif-bench protocol`, straight
 * against libzmq, in a process of its own (so neither side's allocator state affects the other).
 * A DEALER sends to a ROUTER over tcp loopback; a receiver thread takes every message.
 *
 *   rlaif-zmq-reference throughput SIZE COUNT ZERO_COPY   prints messages per second
 *   rlaif-zmq-reference roundtrip SIZE COUNT              prints mean round-trip microseconds
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct receiver {
    void *socket;
    long count;
    double first, last;
};

static void *receive_all(void *arg) {
    struct receiver *r = arg;
    zmq_msg_t msg;
    for (long i = 0; i < r->count; i++) {
        /* ROUTER: identity frame, then the payload. */
        do {
            zmq_msg_init(&msg);
            zmq_msg_recv(&msg, r->socket, 0);
            int more = zmq_msg_more(&msg);
            zmq_msg_close(&msg);
            if (!more) break;
        } while (1);
        if (i == 0) r->first = now_seconds();
    }
    r->last = now_seconds();
    return NULL;
}

static void no_free(void *data, void *hint) { (void)data; (void)hint; }

/* A ROUTER bound to `endpoint` and a DEALER connected to it, as rlaif's endpoints set them up. */
static void open_pair(void *ctx, const char *endpoint, int hwm, void **router, void **dealer) {
    int linger = 0;
    *router = zmq_socket(ctx, ZMQ_ROUTER);
    *dealer = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(*router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(*dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(*dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(*router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_bind(*router, endpoint);
    char bound[256];
    size_t len = sizeof bound;
    zmq_getsockopt(*router, ZMQ_LAST_ENDPOINT, bound, &len);
    zmq_connect(*dealer, bound);
}

static double throughput(const char *endpoint, long size, long count, int zero_copy) {
    void *ctx = zmq_ctx_new(), *router, *dealer;
    open_pair(ctx, endpoint, 10000, &router, &dealer);
    char *buffer = malloc(size);
    memset(buffer, 7, size);
    /* Warm the connection so the measurement starts with it established. */
    zmq_send(dealer, buffer, 1, 0);
    zmq_msg_t m;
    zmq_msg_init(&m); zmq_msg_recv(&m, router, 0); zmq_msg_close(&m);
    zmq_msg_init(&m); zmq_msg_recv(&m, router, 0); zmq_msg_close(&m);

    struct receiver r = {router, count, 0, 0};
    pthread_t thread;
    pthread_create(&thread, NULL, receive_all, &r);
    double start = now_seconds();
    for (long i = 0; i < count; i++) {
        if (zero_copy) {
            zmq_msg_t msg;
            zmq_msg_init_data(&msg, buffer, size, no_free, NULL);
            zmq_msg_send(&msg, dealer, 0);
        } else {
            zmq_send(dealer, buffer, size, 0);
        }
    }
    pthread_join(thread, NULL);
    double seconds = r.last - start;
    zmq_close(dealer);
    zmq_close(router);
    zmq_ctx_term(ctx);
    free(buffer);
    return (double)count / seconds;
}

static double round_trip_us(const char *endpoint, long size, long count) {
    void *ctx = zmq_ctx_new(), *router, *dealer;
    open_pair(ctx, endpoint, 1000, &router, &dealer);
    char *buffer = calloc(1, size > 0 ? size : 1);
    char id[256];
    double start = 0;
    for (long i = -100; i < count; i++) { /* 100 warm-up round trips */
        if (i == 0) start = now_seconds();
        zmq_send(dealer, buffer, size, 0);
        int idlen = zmq_recv(router, id, sizeof id, 0);
        int n = zmq_recv(router, buffer, size, 0);
        zmq_send(router, id, idlen, ZMQ_SNDMORE);
        zmq_send(router, buffer, n, 0);
        zmq_recv(dealer, buffer, size, 0);
    }
    double seconds = now_seconds() - start;
    zmq_close(dealer);
    zmq_close(router);
    zmq_ctx_term(ctx);
    free(buffer);
    return seconds / (double)count * 1e6;
}

int main(int argc, char **argv) {
    const char *endpoint = "tcp://127.0.0.1:*";
    if (argc == 5 && strcmp(argv[1], "throughput") == 0) {
        printf("%f\n", throughput(endpoint, atol(argv[2]), atol(argv[3]), atoi(argv[4])));
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "roundtrip") == 0) {
        printf("%f\n", round_trip_us(endpoint, atol(argv[2]), atol(argv[3])));
        return 0;
    }
    fprintf(stderr, "usage: %s throughput SIZE COUNT ZERO_COPY | roundtrip SIZE COUNT\n", argv[0]);
    return 2;
}
