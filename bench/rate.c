/* Fixed-rate HTTP/1.1 keep-alive load with latency percentiles, open loop.
 *
 *     rate PORT RATE SECONDS [CONNECTIONS] [PATH]
 *
 * Why C: the latencies measured here are a few hundred microseconds; a load generator in an
 * interpreter adds jitter of the same size, which then dominates the p99 it reports.
 *
 * Requests are evenly spaced: request k is due at start + k / RATE and goes to connection
 * k % CONNECTIONS. Its latency runs from that due time to the last byte of its response, so a
 * connection still busy when the next request is due (a stall) counts the wait against every
 * request it delays (no coordinated omission). Wake-ups come from an absolute timerfd with 1 ns
 * timer slack. Prints one JSON line: rate achieved, p50/p90/p99/p99.9/max in ms, errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BUF 65536

struct conn {
    int fd;
    long sent;     /* requests of this connection sent so far (the j-th is global i + j * n) */
    int busy;      /* a request is out */
    size_t have;   /* bytes of the current response read so far */
    char buf[BUF];
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Length of a complete response in buf[0..have), 0 if incomplete, -1 if not a 200. */
static long complete(const char *buf, size_t have) {
    const char *end = memmem(buf, have, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = end - buf + 4;
    long length = 0;
    for (const char *p = buf; p < end;) {
        const char *eol = memmem(p, end - p + 2, "\r\n", 2);
        if (!eol)
            break;
        if (eol - p > 15 && strncasecmp(p, "content-length:", 15) == 0)
            length = strtol(p + 15, NULL, 10);
        p = eol + 2;
    }
    if (have < head + (size_t)length)
        return 0;
    if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
        return -1;
    return (long)(head + length);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT RATE SECONDS [CONNECTIONS] [PATH]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    double rate = atof(argv[2]), seconds = atof(argv[3]);
    int n = argc > 4 ? atoi(argv[4]) : 10;
    const char *path = argc > 5 ? argv[5] : "/small";
    char req[1024];
    int reqlen = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", path);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    long total = (long)(rate * seconds) + 1;
    double *lat = malloc(sizeof(double) * total);
    struct conn *c = calloc(n, sizeof *c);
    int ep = epoll_create1(0), tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)n};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    long errors = 0, done = 0;
    for (int i = 0; i < n; i++) {
        c[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(c[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c[i].fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            perror("connect");
            return 1;
        }
        ev.events = EPOLLIN;
        ev.data.u32 = (unsigned)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
    }
    double start = now_s() + 0.1, end = start + seconds, interval = 1.0 / rate;
    struct timespec mono;
    for (;;) {
        double t = now_s();
        /* send what is due on idle connections; find the next due time */
        double next = 1e300;
        int live = 0;
        for (int i = 0; i < n; i++) {
            if (c[i].fd < 0)
                continue;
            double due = start + (i + c[i].sent * (double)n) * interval;
            if (due >= end) {
                live += c[i].busy;
                continue;
            }
            live++;
            if (c[i].busy)
                continue;
            if (due <= t) {
                if (write(c[i].fd, req, reqlen) != reqlen) {
                    errors++;
                    close(c[i].fd);
                    c[i].fd = -1;
                    continue;
                }
                c[i].busy = 1;
                c[i].have = 0;
            } else if (due < next) {
                next = due;
            }
        }
        if (!live)
            break;
        if (t > end + 5.0) { /* responses still missing long after the end */
            for (int i = 0; i < n; i++)
                errors += c[i].fd >= 0 && c[i].busy;
            break;
        }
        if (next > end + 5.0)
            next = end + 5.0;
        mono.tv_sec = (time_t)next;
        mono.tv_nsec = (long)((next - (double)mono.tv_sec) * 1e9);
        struct itimerspec its = {.it_value = mono};
        timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        struct epoll_event evs[64];
        int k = epoll_wait(ep, evs, 64, -1);
        if (k < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        for (int e = 0; e < k; e++) {
            unsigned i = evs[e].data.u32;
            if (i == (unsigned)n) {
                unsigned long long x;
                if (read(tfd, &x, sizeof x) < 0)
                    continue;
                continue;
            }
            struct conn *cn = &c[i];
            ssize_t r = read(cn->fd, cn->buf + cn->have, BUF - cn->have);
            if (r <= 0 || !cn->busy) {
                errors += cn->busy || r > 0;
                close(cn->fd);
                cn->fd = -1;
                continue;
            }
            cn->have += (size_t)r;
            long len = complete(cn->buf, cn->have);
            if (len == 0 && cn->have < BUF)
                continue;
            double due = start + (i + cn->sent * (double)n) * interval;
            if (len > 0 && done < total)
                lat[done++] = now_s() - due;
            else
                errors++;
            cn->busy = 0;
            cn->sent++;
            cn->have = 0;
        }
    }
    qsort(lat, done, sizeof *lat, cmp);
#define PCT(p) (done ? lat[(long)(done * (p) / 100.0) < done ? (long)(done * (p) / 100.0) : done - 1] * 1e3 : -1.0)
    printf("{\"rate\": %.1f, \"p50_ms\": %.4f, \"p90_ms\": %.4f, \"p99_ms\": %.4f, \"p999_ms\": %.4f, "
           "\"max_ms\": %.4f, \"errors\": %ld}\n",
           done / seconds, PCT(50), PCT(90), PCT(99), PCT(99.9), done ? lat[done - 1] * 1e3 : -1.0, errors);
    return 0;
}
