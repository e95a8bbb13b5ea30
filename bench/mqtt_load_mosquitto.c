/* mqtt_load_mosquitto.c - bench/mqtt_load.cpp's load on libmosquitto: P publishers each send
 * M messages of 64 bytes to bench/<i> at QoS Q, at most W unfinished each (on_publish: QoS 0
 * written, QoS 1 acknowledged), one subscriber to bench/# counts them. One thread drives every
 * client through libmosquitto's external-loop API (mosquitto_socket, mosquitto_loop_read /
 * _write / _misc, poll over all the sockets): the way to put many clients in one event loop,
 * as corio does. usage: mqtt_load_mosquitto PORT QOS [P M W] */
#include <mosquitto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static int P = 100, M = 1000, W = 20, qos;
static long received, failed;
static int connected, subscribed, *sent;
static struct mosquitto **pubs;
static char payload[64];
static double last;

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
static void next(int i) {
  if (sent[i] >= M) return;
  sent[i]++;
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

/* One turn: poll every socket (at most ms), then read, write and housekeeping. */
static void turn(struct mosquitto **all, int n, int ms) {
  struct pollfd fds[n];
  for (int i = 0; i < n; i++) {
    fds[i].fd = mosquitto_socket(all[i]);
    fds[i].events = POLLIN | (mosquitto_want_write(all[i]) ? POLLOUT : 0);
    fds[i].revents = 0;
  }
  poll(fds, (nfds_t)n, ms);
  for (int i = 0; i < n; i++) {
    if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) mosquitto_loop_read(all[i], 1);
    if (fds[i].revents & POLLOUT) mosquitto_loop_write(all[i], 1);
    mosquitto_loop_misc(all[i]);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: mqtt_load_mosquitto PORT QOS [P M W]\n"); return 2; }
  int port = atoi(argv[1]);
  qos = atoi(argv[2]);
  if (argc > 3) P = atoi(argv[3]);
  if (argc > 4) M = atoi(argv[4]);
  if (argc > 5) W = atoi(argv[5]);
  long total = (long)P * M;
  memset(payload, 'x', sizeof payload);
  mosquitto_lib_init();
  struct mosquitto **all = calloc((size_t)P + 1, sizeof *all);
  sent = calloc((size_t)P, sizeof *sent);
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
  for (int i = 0; i <= P; i++)
    if (mosquitto_connect(all[i], "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS) { printf("bench=mqtt_load impl=libmosquitto qos=%d FAIL connect\n", qos); return 1; }
  int asked = 0;
  double give_up = now() + 60;
  while ((connected < P || !subscribed) && now() < give_up) {
    turn(all, P + 1, 50);
    if (!asked) { mosquitto_subscribe(all[0], NULL, "bench/#", qos); asked = 1; }
  }
  if (connected < P || !subscribed) { printf("bench=mqtt_load impl=libmosquitto qos=%d clients=%d FAIL connect\n", qos, P); return 1; }
  double cpu0 = cpu_s(), t0 = now();
  for (int i = 0; i < P; i++)
    for (int w = 0; w < W; w++) next(i);
  double end = now() + 60, quiet = now();
  long seen = -1;
  while (received < total && now() < end) {
    turn(all, P + 1, 100);
    if (received != seen) seen = received, quiet = now();
    if (now() - quiet > 3) break;
  }
  double secs = last - t0, cpu = cpu_s() - cpu0;
  printf("bench=mqtt_load impl=libmosquitto qos=%d clients=%d msgs=%ld received=%ld failed=%ld secs=%.3f "
         "msgs_per_s=%.0f cpu_s=%.2f\n", qos, P, total, received, failed, secs, secs > 0 ? received / secs : 0.0, cpu);
  for (int i = 0; i <= P; i++) { mosquitto_disconnect(all[i]); mosquitto_destroy(all[i]); }
  mosquitto_lib_cleanup();
  return received == total ? 0 : 1;
}
