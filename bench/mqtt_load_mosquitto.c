/* mqtt_load_mosquitto.c - bench/mqtt_load.cpp's load on libmosquitto: P publishers each send
 * M messages of 64 bytes to bench/<i> at QoS Q, at most W unfinished each (on_publish: QoS 0
 * written, QoS 1 acknowledged; mosquitto_max_inflight_messages_set(W) as well), one subscriber
 * to bench/# counts them. Two ways to drive the clients, both idiomatic libmosquitto:
 *   loop     one thread for every client through the external-loop API, as corio runs them
 *            in one event loop: epoll over mosquitto_socket() of each, mosquitto_loop_read
 *            when readable, mosquitto_loop_write when writable or mosquitto_want_write (EPOLLOUT
 *            only while it wants), mosquitto_loop_misc for each once a second (the docs' "around
 *            once per second is sufficient").
 *   threads  mosquitto_loop_start: libmosquitto's own network thread per client (P + 1).
 * usage: mqtt_load_mosquitto PORT QOS [P M W [loop|threads]] */
#include <mosquitto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int P = 100, M = 1000, W = 20, qos, threads;
static atomic_long received, failed;
static atomic_int connected, subscribed, *sent;
static struct mosquitto **all, **pubs;
static char payload[64];
static _Atomic double last;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}
static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}
/* Publisher i's next message, if it has one left (threads: its thread and main may race). */
static void next(int i) {
  if (atomic_fetch_add(&sent[i], 1) >= M) return;
  char topic[32];
  snprintf(topic, sizeof topic, "bench/%d", i);
  if (mosquitto_publish(pubs[i], NULL, topic, sizeof payload, payload, qos, false) != MOSQ_ERR_SUCCESS) failed++;
}
static void on_connect(struct mosquitto *m, void *u, int rc) { (void)m, (void)u; if (rc == 0) connected++; }
static void on_subscribe(struct mosquitto *m, void *u, int mid, int n, const int *g) { (void)m, (void)u, (void)mid, (void)n, (void)g; subscribed = 1; }
static void on_publish(struct mosquitto *m, void *u, int mid) { (void)m, (void)mid; next((int)(long)u - 1); }
static void on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg) {
  (void)m, (void)u, (void)msg;
  received++;
  last = now();
}

/* loop: one epoll turn of at most ms over the n clients. */
static int ep = -1;
static char *wants;  /* EPOLLOUT registered for client i */
static void watch(int i) {
  char w = mosquitto_want_write(all[i]) ? 1 : 0;
  if (w == wants[i]) return;
  wants[i] = w;
  struct epoll_event ev = {.events = EPOLLIN | (w ? EPOLLOUT : 0), .data.u32 = (unsigned)i};
  epoll_ctl(ep, EPOLL_CTL_MOD, mosquitto_socket(all[i]), &ev);
}
static void turn(int n, int ms) {
  static double misc_at;
  struct epoll_event evs[256];
  int k = epoll_wait(ep, evs, 256, ms);
  for (int j = 0; j < k; j++) {
    int i = (int)evs[j].data.u32;
    if (evs[j].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) mosquitto_loop_read(all[i], 1);
    /* what the callbacks of that read queued (the next publish, a PUBACK) goes out now */
    if ((evs[j].events & EPOLLOUT) || mosquitto_want_write(all[i])) mosquitto_loop_write(all[i], 1);
    watch(i);
  }
  if (now() >= misc_at) {
    misc_at = now() + 1;
    for (int i = 0; i < n; i++) mosquitto_loop_misc(all[i]), watch(i);
  }
}
/* Run the clients until done() or the deadline: epoll turns, or (threads) just wait. */
static void run_until(int (*done)(void), double deadline) {
  while (!done() && now() < deadline) {
    if (threads) usleep(1000);
    else turn(P + 1, 50);
  }
}
static int all_up(void) { return connected == P && subscribed; }
static long total, seen = -1;
static double quiet;
static int all_in(void) {  /* everything received, or nothing new for 3 s (the rest is lost) */
  if (received != seen) seen = received, quiet = now();
  return received >= total || now() - quiet > 3;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: mqtt_load_mosquitto PORT QOS [P M W [loop|threads]]\n"); return 2; }
  int port = atoi(argv[1]);
  qos = atoi(argv[2]);
  if (argc > 3) P = atoi(argv[3]);
  if (argc > 4) M = atoi(argv[4]);
  if (argc > 5) W = atoi(argv[5]);
  threads = argc > 6 && strcmp(argv[6], "threads") == 0;
  const char *impl = threads ? "libmosquitto-threads" : "libmosquitto";
  total = (long)P * M;
  memset(payload, 'x', sizeof payload);
  mosquitto_lib_init();
  all = calloc((size_t)P + 1, sizeof *all);
  sent = calloc((size_t)P, sizeof *sent);
  wants = calloc((size_t)P + 1, 1);
  pubs = all + 1;
  all[0] = mosquitto_new("load-sub", true, NULL);
  mosquitto_message_callback_set(all[0], on_message);
  mosquitto_subscribe_callback_set(all[0], on_subscribe);
  for (int i = 0; i < P; i++) {
    char id[32];
    snprintf(id, sizeof id, "load-pub-%d", i);
    pubs[i] = mosquitto_new(id, true, (void *)(long)(i + 1));  /* i + 1: NULL means the client itself */
    mosquitto_connect_callback_set(pubs[i], on_connect);
    mosquitto_publish_callback_set(pubs[i], on_publish);
    mosquitto_max_inflight_messages_set(pubs[i], (unsigned)W);
  }
  ep = epoll_create1(0);
  for (int i = 0; i <= P; i++) {
    if (mosquitto_connect(all[i], "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS) {
      printf("bench=mqtt_load impl=%s qos=%d FAIL connect\n", impl, qos);
      return 1;
    }
    if (threads) {
      mosquitto_loop_start(all[i]);
    } else {
      struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)i};
      epoll_ctl(ep, EPOLL_CTL_ADD, mosquitto_socket(all[i]), &ev);
      watch(i);
    }
  }
  mosquitto_subscribe(all[0], NULL, "bench/#", qos);
  if (!threads) watch(0);
  run_until(all_up, now() + 60);
  if (!all_up()) { printf("bench=mqtt_load impl=%s qos=%d clients=%d FAIL connect\n", impl, qos, P); return 1; }
  double cpu0 = cpu_s(), t0 = now();
  for (int i = 0; i < P; i++) {
    for (int w = 0; w < W; w++) next(i);
    if (!threads) watch(i + 1);
  }
  quiet = now();
  run_until(all_in, now() + 60);
  double secs = last - t0, cpu = cpu_s() - cpu0;
  long got = received;
  printf("bench=mqtt_load impl=%s qos=%d clients=%d msgs=%ld received=%ld failed=%ld secs=%.3f "
         "msgs_per_s=%.0f cpu_s=%.2f\n", impl, qos, P, total, got, (long)failed, secs, secs > 0 ? got / secs : 0.0, cpu);
  for (int i = 0; i <= P; i++) {
    mosquitto_disconnect(all[i]);
    if (threads) mosquitto_loop_stop(all[i], false);
    mosquitto_destroy(all[i]);
  }
  mosquitto_lib_cleanup();
  return got == total ? 0 : 1;
}
