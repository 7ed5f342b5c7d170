/*
 * Counting and clearing a test's directories, a spool's hashed leaves included (a directory in
 * the one counted or cleared is taken as a leaf): for the spool's unit tests and fuzz targets, and
 * the suppression store's.
 * Include in one .c per test.
 */
#ifndef SLUICE_TEST_DIRS_H
#define SLUICE_TEST_DIRS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Entries of the directory at path, those of a directory in it (a spool's leaf) counted instead
 * of it; -1 when path cannot be opened. */
static inline int test_dir_count(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char sub[512];
        struct stat st;
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        n += lstat(sub, &st) == 0 && S_ISDIR(st.st_mode) ? test_dir_count(sub) : 1;
    }
    closedir(d);
    return n;
}

/* Empties the directory at path, removing the directories in it with what they hold. */
static inline void test_dir_clear(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno == EISDIR) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
            test_dir_clear(sub);
            unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
        }
    }
    closedir(d);
}

#endif
