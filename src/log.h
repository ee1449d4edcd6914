/* log.h - operational log: levels, stderr or a file, fatal exits. */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>

#include "compat.h"

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Longest log file path, with its NUL. */
#define LOG_PATH_MAX 4096

void log_init(enum log_level level, const char *path);
int log_file_open(const char *path);
void log_file_switch(const char *path, int fd);
int log_file_is(const char *path);
int log_reopen(void);
void log_set_level(enum log_level level);
int log_level_parse(const char *s, enum log_level *out);

void log_error(const char *fmt, ...) PRINTFLIKE(1, 2);
void log_warnx(const char *fmt, ...) PRINTFLIKE(1, 2);
void log_warn(const char *fmt, ...) PRINTFLIKE(1, 2);
void log_info(const char *fmt, ...) PRINTFLIKE(1, 2);
void log_debug(const char *fmt, ...) PRINTFLIKE(1, 2);
void fatal(const char *fmt, ...) PRINTFLIKE(1, 2) DEAD;
void fatalx(const char *fmt, ...) PRINTFLIKE(1, 2) DEAD;

#endif /* LOG_H */
