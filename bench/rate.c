/* Fixed-rate HTTP/1.1 keep-alive load with latency percentiles, open loop.
 *
 *     rate PORT[,PORT...] RATE SECONDS [CONNECTIONS] [PATH] [SLICE_MS]
 *
 * Why C: the latencies measured here are a few hundred microseconds; a load generator in an
 * interpreter adds jitter of the same size, which then dominates the p99 it reports.
 *
 * Requests are evenly spaced: request k is due at start + k / RATE and goes to connection
 * k % CONNECTIONS. Its latency runs from that due time to the last byte of its response, so a
 * connection still busy when the next request is due (a stall) counts the wait against every
 * request it delays (no coordinated omission). Wake-ups come from an absolute timerfd with 1 ns
 * timer slack. Prints one JSON line: rate achieved, p50/p90/p99/p99.9/max in ms, errors.
 *
 * Several ports are measured in turns: time is cut in slices of SLICE_MS (default 100) given to
 * each port in turn, each with its own CONNECTIONS, until every port has had SECONDS of load at
 * RATE; one JSON line per port, in order. Why: this machine's noise comes in spells (host steal)
 * that last from milliseconds to minutes, so targets measured one after the other see different
 * spells and their tails differ by more than the proxies do; in turns, they share them.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
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

/* The schedule: T ports, `per` connections each, requests every `interval` s on each port's own
 * clock, which runs only during that port's slices. */
static int T = 0, per = 10;
static double start, interval, slice;

/* When the `sent`-th request of connection i is due (on its port's clock: *v). */
static double due_at(int i, long sent, double *v) {
    *v = (i % per + sent * (double)per) * interval;
    if (T == 1)
        return start + *v;
    double k = floor(*v / slice + 1e-9); /* its port's slice (rounding kept consistent with the offset) */
    double off = *v - k * slice;
    return start + (k * T + i / per) * slice + (off > 0 ? off : 0);
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
        fprintf(stderr, "usage: %s PORT[,PORT...] RATE SECONDS [CONNECTIONS] [PATH] [SLICE_MS]\n", argv[0]);
        return 2;
    }
    int ports[16];
    for (char *p = strtok(argv[1], ","); p && T < 16; p = strtok(NULL, ","))
        ports[T++] = atoi(p);
    double rate = atof(argv[2]), seconds = atof(argv[3]);
    per = argc > 4 ? atoi(argv[4]) : 10; /* connections per port */
    const char *path = argc > 5 ? argv[5] : "/small";
    slice = (argc > 6 ? atof(argv[6]) : 100.0) / 1000.0;
    int n = per * T;
    char req[1024];
    int reqlen = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", path);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    long total = (long)(rate * seconds) + 1;
    double *lat = malloc(sizeof(double) * total * T);
    long done_t[16] = {0}, errors_t[16] = {0};
    struct conn *c = calloc(n, sizeof *c);
    int ep = epoll_create1(0), tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)n};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    for (int i = 0; i < n; i++) {
        sa.sin_port = htons(ports[i / per]);
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
    start = now_s() + 0.1;
    interval = 1.0 / rate;
    struct timespec mono;
    for (;;) {
        double t = now_s();
        /* send what is due on idle connections; find the next due time */
        double next = 1e300;
        int live = 0;
        for (int i = 0; i < n; i++) {
            if (c[i].fd < 0)
                continue;
            double v, due = due_at(i, c[i].sent, &v);
            if (v >= seconds) {
                live += c[i].busy;
                continue;
            }
            live++;
            if (c[i].busy)
                continue;
            if (due <= t) {
                if (write(c[i].fd, req, reqlen) != reqlen) {
                    errors_t[i / per]++;
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
        double end = start + seconds * T;
        if (t > end + 5.0) { /* responses still missing long after the end */
            for (int i = 0; i < n; i++)
                errors_t[i / per] += c[i].fd >= 0 && c[i].busy;
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
                errors_t[i / per] += cn->busy || r > 0;
                close(cn->fd);
                cn->fd = -1;
                continue;
            }
            cn->have += (size_t)r;
            long len = complete(cn->buf, cn->have);
            if (len == 0 && cn->have < BUF)
                continue;
            double v, due = due_at((int)i, cn->sent, &v);
            long *done = &done_t[i / per];
            if (len > 0 && *done < total)
                lat[total * (i / per) + (*done)++] = now_s() - due;
            else
                errors_t[i / per]++;
            cn->busy = 0;
            cn->sent++;
            cn->have = 0;
        }
    }
    for (int t = 0; t < T; t++) {
        double *l = lat + total * t;
        long done = done_t[t];
        qsort(l, done, sizeof *l, cmp);
#define PCT(p) (done ? l[(long)(done * (p) / 100.0) < done ? (long)(done * (p) / 100.0) : done - 1] * 1e3 : -1.0)
        printf("{\"rate\": %.1f, \"p50_ms\": %.4f, \"p90_ms\": %.4f, \"p99_ms\": %.4f, \"p999_ms\": %.4f, "
               "\"max_ms\": %.4f, \"errors\": %ld}\n",
               done / seconds, PCT(50), PCT(90), PCT(99), PCT(99.9), done ? l[done - 1] * 1e3 : -1.0, errors_t[t]);
    }
    return 0;
}
