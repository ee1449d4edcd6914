/* compat.h - small portability and annotation macros shared by every module. */
#ifndef COMPAT_H
#define COMPAT_H

#define FALLTHROUGH __attribute__((fallthrough))
#define PRINTFLIKE(f, a) __attribute__((format(printf, f, a)))
#define DEAD __attribute__((noreturn))

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

#endif /* COMPAT_H */
