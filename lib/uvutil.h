/*
 * Small helpers shared by every libuv user: recovering an owner from an embedded member.
 */
#ifndef SLUICE_UVUTIL_H
#define SLUICE_UVUTIL_H

#include <stddef.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
