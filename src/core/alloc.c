/* The library's one allocator, replaceable with ei_set_allocator (Lua's lua_Alloc model). Every block is
 * 64-byte aligned so kernels can use aligned vector loads on anything the library allocates. */
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"

static void *default_alloc(void *ud, size_t size, size_t align) {
  (void)ud;
  void *p = NULL;
  if (posix_memalign(&p, align, size ? size : 1)) return NULL;
  return p;
}
static void default_free(void *ud, void *p) {
  (void)ud;
  free(p);
}

static ei_allocator g_alloc = {default_alloc, default_free, NULL};

void ei_set_allocator(const ei_allocator *a) {
  if (a && a->alloc && a->free)
    g_alloc = *a;
  else
    g_alloc = (ei_allocator){default_alloc, default_free, NULL};
}

void *ei__malloc(size_t n) { return g_alloc.alloc(g_alloc.ud, n, EI_ALIGN); }

void *ei__calloc(size_t count, size_t size) {
  size_t n;
  if (!ei__mul_size(count, size, &n)) return NULL;
  void *p = ei__malloc(n);
  if (p) memset(p, 0, n);
  return p;
}

void *ei__realloc(void *p, size_t old_n, size_t new_n) {
  void *q = ei__malloc(new_n);
  if (!q) return NULL;
  if (p) {
    memcpy(q, p, old_n < new_n ? old_n : new_n);
    ei__free(p);
  }
  return q;
}

void ei__free(void *p) {
  if (p) g_alloc.free(g_alloc.ud, p);
}

char *ei__strndup(const char *s, size_t n) {
  char *d = ei__malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

char *ei__strdup(const char *s) { return ei__strndup(s, strlen(s)); }
