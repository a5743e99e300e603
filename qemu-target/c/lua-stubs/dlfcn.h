/*
 * Lua is built for the board as for a POSIX system (lua-src knows no
 * bare-metal target), and its package library includes <dlfcn.h>, which
 * picolibc does not have. The board loads no C modules: the package
 * library is never opened, so these are declared but never linked.
 */
#ifndef BOARD_DLFCN_H
#define BOARD_DLFCN_H
#define RTLD_NOW 2
#define RTLD_LOCAL 0
#define RTLD_GLOBAL 0x100
void *dlopen(const char *file, int mode);
void *dlsym(void *handle, const char *name);
int dlclose(void *handle);
char *dlerror(void);
#endif
