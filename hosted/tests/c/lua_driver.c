/*
 * lua_driver - runs a Lua 5.4 script (argv[1]) in a state whose every
 * allocation goes through one allocator function: with -DNOMMU_MALLOC the
 * nommu allocator (each heap chunk a mapping the memory server gave, as
 * in a uClinux port), else the host libc's realloc/free. Opens the base,
 * string, table, math, coroutine and utf8 libraries (no io, os or
 * package: the script prints through print()). With -DNOMMU_MALLOC the
 * allocator's request counts go to stderr as one line:
 *   nommu_malloc: mmap N munmap N mremap N mapped N
 */
#include <stdio.h>
#include <stdlib.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

#ifdef NOMMU_MALLOC
#include "nommu_malloc.h"
#define APP_REALLOC nommu_realloc
#define APP_FREE nommu_free
#else
#define APP_REALLOC realloc
#define APP_FREE free
#endif

#include "malloc_stats.h"

static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        APP_FREE(ptr);
        return NULL;
    }
    return APP_REALLOC(ptr, nsize);
}

static int l_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "lua_driver: panic: %s\n", msg ? msg : "(not a string)");
    return 0;
}

int main(int argc, char **argv)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_COLIBNAME, luaopen_coroutine}, {LUA_UTF8LIBNAME, luaopen_utf8},
        {NULL, NULL},
    };
    if (argc != 2) {
        fprintf(stderr, "usage: lua_driver SCRIPT\n");
        return 2;
    }
    lua_State *L = lua_newstate(l_alloc, NULL);
    if (L == NULL) {
        fprintf(stderr, "lua_driver: lua_newstate failed\n");
        return 1;
    }
    lua_atpanic(L, l_panic);
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    int status = luaL_loadfile(L, argv[1]);
    if (status == LUA_OK)
        status = lua_pcall(L, 0, 0, 0);
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "lua_driver: %s\n", msg ? msg : "(error object is not a string)");
    }
    lua_close(L);
    fflush(stdout);
    print_malloc_stats();
    return status == LUA_OK ? 0 : 1;
}
