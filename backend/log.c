/* One line per event on stderr (systemd's journal adds the rest). */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "gmpd.h"

static int g_level = GMPD_INFO;

void gmpd_log_set_level(int level)
{
    g_level = level;
}

void gmpd_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (level > g_level)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    /* one fprintf per line so lines from threads do not interleave */
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ gmpoold %s: %s\n",
            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
            tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, names[level], line);
}
