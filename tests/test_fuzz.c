/* tests/test_fuzz.c: deterministic mutation fuzzing of model loading, planning and running.
 *
 * usage: test_fuzz [--cases N] [--seed S] [--only K] [-v] PATH...
 *   PATH  a folder of ONNX backend cases (every PATH/<case>/model.onnx is taken) or an .onnx file; a file larger
 *         than 64 KiB contributes only its first 64 KiB. Missing paths are skipped with a note.
 *   --cases N   mutated cases to run (default 20000); --seed S   PRNG seed (default 0x0eed);
 *   --only K    run case K alone and print its mutations (to replay a failure); -v   print every case.
 *
 * Every corpus entry is first loaded unmutated, then each case picks an entry (seeded splitmix64), applies 1-3
 * mutations and runs ei_model_load_memory -> ei_session_plan -> ei_session_run with zero-filled inputs whose
 * shapes come from ei_model_input_info (symbolic dims -> 1 or 2). Mutations are raw (bit flips, bytes set to
 * 0x00/0xff/0x80, truncation, insertion/deletion, range duplication, overlong varints, huge lengths) or
 * structure-aware: the bytes are walked as nested protobuf messages and a field is edited with every enclosing
 * length prefix fixed up (varint values set to edge values, length prefixes lying, fields deleted, duplicated
 * or re-keyed, strings swapped so names collide, int32/int64 elements of small raw_data patched), so mutations
 * reach the importer's semantic checks, the passes, the kernels' init/infer and the planner.
 *
 * A case fails when a call returns a status outside ei_status, an error without a message, a failed load that
 * still hands out a model, or EI_E_INTERNAL; crashes, sanitizer reports and leaks fail the process. The last line
 * is "N passed, M failed".
 */
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edgeinfer.h"

#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif
#ifdef FUZZ_ASAN
void __sanitizer_set_death_callback(void (*callback)(void));
#endif

#define PREFIX_BYTES (64 * 1024)
#define MAX_INPUT_BYTES ((size_t)1 << 20)     /* larger inputs are not run (capped element count) */
#define MAX_RUN_ARENA ((size_t)32 << 20)      /* larger plans are planned but not run (per-case cost) */
#define MAX_RUN_MACS ((int64_t)50 * 1000 * 1000)
#define ARENA_CAP ((size_t)256 << 20)
#define MAX_RECS 20000

/* ---- PRNG (splitmix64) ---- */
static uint64_t g_rng;
static uint64_t rnd(void) {
  uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static size_t rnd_below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

/* ---- byte buffer ---- */
typedef struct buf {
  uint8_t *p;
  size_t n, cap;
} buf;

static void buf_reserve(buf *b, size_t n) {
  if (n <= b->cap) return;
  size_t c = b->cap ? b->cap : 256;
  while (c < n) c *= 2;
  b->p = realloc(b->p, c);
  if (!b->p) {
    fprintf(stderr, "test_fuzz: out of memory\n");
    exit(2);
  }
  b->cap = c;
}

/* Replaces b[pos, pos+oldlen) by nb[0, nlen). */
static void buf_splice(buf *b, size_t pos, size_t oldlen, const uint8_t *nb, size_t nlen) {
  if (pos > b->n) pos = b->n;
  if (oldlen > b->n - pos) oldlen = b->n - pos;
  buf_reserve(b, b->n - oldlen + nlen + 1);
  memmove(b->p + pos + nlen, b->p + pos + oldlen, b->n - pos - oldlen);
  if (nlen) memmove(b->p + pos, nb, nlen);
  b->n = b->n - oldlen + nlen;
}

static size_t put_varint(uint8_t *out, uint64_t v) {
  size_t n = 0;
  do {
    out[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v) out[n] |= 0x80;
    n++;
  } while (v);
  return n;
}

static int get_varint(const uint8_t *p, size_t end, size_t *pos, uint64_t *v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= end) return 0;
    uint8_t c = p[(*pos)++];
    r |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) {
      *v = r;
      return 1;
    }
  }
  return 0;
}

/* ---- protobuf structure (for structure-aware mutations) ---- */
typedef struct rec {
  size_t key, val, pay, end; /* key offset; value offset (after key); LEN payload offset; end of field */
  uint32_t num;
  int wire;
  int parent; /* enclosing LEN field, -1 at top level */
  int is_msg; /* LEN payload parsed as a message */
} rec;

typedef struct recs {
  rec r[MAX_RECS];
  int n;
} recs;

static recs g_recs;

/* Records the fields of b[start, end); nested LEN payloads that parse completely are recursed into. Returns 1
 * if the whole range parsed. At depth 0 the fields before an error are kept. */
static int parse_msg(const uint8_t *b, size_t start, size_t end, int parent, int depth, recs *rs) {
  size_t pos = start;
  int nfields = 0;
  while (pos < end) {
    rec f = {0};
    f.key = pos;
    f.parent = parent;
    uint64_t key, v;
    if (!get_varint(b, end, &pos, &key)) return 0;
    f.num = (uint32_t)(key >> 3);
    f.wire = (int)(key & 7);
    if (f.num == 0 || (key >> 3) > 0x1fffffff) return 0;
    f.val = pos;
    switch (f.wire) {
      case 0: if (!get_varint(b, end, &pos, &v)) return 0; break;
      case 1: if (end - pos < 8) return 0; pos += 8; break;
      case 5: if (end - pos < 4) return 0; pos += 4; break;
      case 2:
        if (!get_varint(b, end, &pos, &v) || v > end - pos) return 0;
        pos += (size_t)v;
        break;
      default: return 0;
    }
    f.end = pos;
    f.pay = f.wire == 2 ? pos - (size_t)v : f.val;
    if (rs->n >= MAX_RECS) return depth == 0;
    int me = rs->n++;
    rs->r[me] = f;
    nfields++;
    if (f.wire == 2 && depth < 10 && f.end - f.pay >= 2) {
      int saved = rs->n;
      if (parse_msg(b, f.pay, f.end, me, depth + 1, rs))
        rs->r[me].is_msg = 1;
      else
        rs->n = saved;
    }
  }
  return nfields > 0 || depth == 0;
}

/* Replaces b[pos, pos+oldlen) by nb inside field `parent` and rewrites the length prefix of every enclosing
 * field (innermost first: each prefix lies before the edits already made, so offsets stay valid). */
static void edit_fixup(buf *b, const recs *rs, int parent, size_t pos, size_t oldlen, const uint8_t *nb, size_t nlen) {
  buf_splice(b, pos, oldlen, nb, nlen);
  int64_t delta = (int64_t)nlen - (int64_t)oldlen;
  for (int a = parent; a >= 0 && delta; a = rs->r[a].parent) {
    const rec *f = &rs->r[a];
    uint8_t pre[10];
    size_t plen = put_varint(pre, (uint64_t)((int64_t)(f->end - f->pay) + delta));
    buf_splice(b, f->val, f->pay - f->val, pre, plen);
    delta += (int64_t)plen - (int64_t)(f->pay - f->val);
  }
}

/* ---- mutations ---- */
static char g_desc[1024]; /* the current case, printed when it crashes */

static void describe(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void describe(const char *fmt, ...) {
  size_t l = strlen(g_desc);
  if (l + 2 >= sizeof g_desc) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_desc + l, sizeof g_desc - l, fmt, ap);
  va_end(ap);
}

static uint64_t edge_value(uint64_t old) {
  static const uint64_t vals[] = {0, 1, 2, 3, 7, 255, 256, 65536, 0x7fffffffull, 0x80000000ull, 0xffffffffull,
                                  0x100000000ull, 1ull << 40, 0x7fffffffffffffffull, 0x8000000000000000ull,
                                  0xffffffffffffffffull /* -1 */, 0xfffffffffffffffeull /* -2 */, 1000000, 17, 16};
  switch (rnd_below(4)) {
    case 0: return old + 1;
    case 1: return old - 1;
    case 2: return rnd_below(32);
    default: return vals[rnd_below(sizeof vals / sizeof *vals)];
  }
}

static int pick_rec(const recs *rs, int want_wire, int want_leaf) {
  if (!rs->n) return -1;
  for (int tries = 0; tries < 32; tries++) {
    int i = (int)rnd_below((size_t)rs->n);
    if (want_wire >= 0 && rs->r[i].wire != want_wire) continue;
    if (want_leaf && rs->r[i].is_msg) continue;
    return i;
  }
  return -1;
}

/* One structure-aware mutation; returns 0 if none applied. */
static int mutate_structured(buf *b) {
  recs *rs = &g_recs;
  rs->n = 0;
  parse_msg(b->p, 0, b->n, -1, 0, rs);
  if (!rs->n) return 0;
  uint8_t tmp[16];
  int i;
  switch (rnd_below(8)) {
    case 0: { /* set a varint value */
      if ((i = pick_rec(rs, 0, 0)) < 0) return 0;
      const rec *f = &rs->r[i];
      size_t pos = f->val;
      uint64_t old = 0;
      get_varint(b->p, f->end, &pos, &old);
      uint64_t v = edge_value(old);
      describe(" varint@%zu(field %u)=%lld", f->val, f->num, (long long)v);
      edit_fixup(b, rs, f->parent, f->val, f->end - f->val, tmp, put_varint(tmp, v));
      return 1;
    }
    case 1: { /* length prefix lies (only the enclosing prefixes are fixed for its width) */
      if ((i = pick_rec(rs, 2, 0)) < 0) return 0;
      const rec *f = &rs->r[i];
      size_t len = f->end - f->pay;
      static const uint64_t huge[] = {0xffffffffull, 0x7fffffffull, 1ull << 62, 0xffffffffffffffffull, 1ull << 31};
      uint64_t v;
      switch (rnd_below(4)) {
        case 0: v = len + 1 + rnd_below(8); break;
        case 1: v = len ? len - 1 - rnd_below(len) : 1; break;
        case 2: v = 0; break;
        default: v = huge[rnd_below(sizeof huge / sizeof *huge)]; break;
      }
      describe(" len@%zu(field %u)=%llu", f->val, f->num, (unsigned long long)v);
      edit_fixup(b, rs, f->parent, f->val, f->pay - f->val, tmp, put_varint(tmp, v));
      return 1;
    }
    case 2: { /* delete a field */
      if ((i = pick_rec(rs, -1, 0)) < 0) return 0;
      const rec *f = &rs->r[i];
      describe(" delete@%zu(field %u)", f->key, f->num);
      edit_fixup(b, rs, f->parent, f->key, f->end - f->key, NULL, 0);
      return 1;
    }
    case 3: { /* duplicate a field */
      if ((i = pick_rec(rs, -1, 0)) < 0) return 0;
      const rec *f = &rs->r[i];
      size_t len = f->end - f->key;
      if (len > (1u << 20)) return 0;
      uint8_t *copy = malloc(len ? len : 1);
      memcpy(copy, b->p + f->key, len);
      describe(" dup@%zu(field %u)", f->key, f->num);
      edit_fixup(b, rs, f->parent, f->end, 0, copy, len);
      free(copy);
      return 1;
    }
    case 4: { /* re-key: another wire type or field number */
      if ((i = pick_rec(rs, -1, 0)) < 0) return 0;
      const rec *f = &rs->r[i];
      uint32_t num = f->num;
      int wire = f->wire;
      if (rnd_below(2))
        wire = (int)rnd_below(8);
      else
        num = rnd_below(2) ? (uint32_t)(1 + rnd_below(21)) : (rnd_below(2) ? num + 1 : 0x1fffffff);
      describe(" rekey@%zu(field %u/%d -> %u/%d)", f->key, f->num, f->wire, num, wire);
      edit_fixup(b, rs, f->parent, f->key, f->val - f->key, tmp, put_varint(tmp, (uint64_t)num << 3 | (unsigned)wire));
      return 1;
    }
    case 5: { /* replace a string/bytes payload by another short one (names collide, refs dangle) */
      if ((i = pick_rec(rs, 2, 1)) < 0) return 0;
      int j = pick_rec(rs, 2, 1);
      const rec *f = &rs->r[i];
      uint8_t payload[10 + 256];
      size_t plen = 0;
      if (j >= 0 && rs->r[j].end - rs->r[j].pay <= 256 && rnd_below(4)) {
        plen = rs->r[j].end - rs->r[j].pay;
        memcpy(payload + 10, b->p + rs->r[j].pay, plen);
      } else if (rnd_below(2)) {
        plen = 1 + rnd_below(8);
        for (size_t k = 0; k < plen; k++) payload[10 + k] = (uint8_t)('a' + rnd_below(3));
      }
      describe(" payload@%zu(field %u, %zu bytes)", f->key, f->num, plen);
      size_t pl = put_varint(tmp, plen);
      memcpy(payload + 10 - pl, tmp, pl);
      edit_fixup(b, rs, f->parent, f->val, f->end - f->val, payload + 10 - pl, pl + plen);
      return 1;
    }
    default: { /* patch one int64/int32 element of a small bytes payload (raw_data of shapes, axes, pads) */
      if ((i = pick_rec(rs, 2, 1)) < 0) return 0;
      const rec *f = &rs->r[i];
      size_t len = f->end - f->pay;
      size_t w = len % 8 == 0 ? 8 : len % 4 == 0 ? 4 : 0;
      if (!w || len > 256) return 0;
      size_t at = f->pay + w * rnd_below(len / w);
      uint64_t old = 0;
      memcpy(&old, b->p + at, w);
      uint64_t v = edge_value(old);
      if (rnd_below(3) == 0) v = (uint64_t)(-(int64_t)old);
      describe(" elem%zu@%zu=%lld", w * 8, at, (long long)v);
      memcpy(b->p + at, &v, w); /* little-endian host */
      return 1;
    }
  }
}

static void mutate_raw(buf *b) {
  if (!b->n) {
    uint8_t c = (uint8_t)rnd();
    buf_splice(b, 0, 0, &c, 1);
    describe(" insert1");
    return;
  }
  size_t at = rnd_below(b->n);
  switch (rnd_below(9)) {
    case 0:
      b->p[at] ^= (uint8_t)(1u << rnd_below(8));
      describe(" bitflip@%zu", at);
      break;
    case 1: {
      static const uint8_t v[] = {0x00, 0xff, 0x80};
      b->p[at] = v[rnd_below(3)];
      describe(" set@%zu=%02x", at, b->p[at]);
      break;
    }
    case 2:
      b->n = at;
      describe(" truncate@%zu", at);
      break;
    case 3: {
      uint8_t ins[16];
      size_t k = 1 + rnd_below(16);
      for (size_t j = 0; j < k; j++) ins[j] = (uint8_t)rnd();
      buf_splice(b, at, 0, ins, k);
      describe(" insert%zu@%zu", k, at);
      break;
    }
    case 4: {
      size_t k = 1 + rnd_below(rnd_below(2) ? 16 : b->n / 8 + 1);
      buf_splice(b, at, k, NULL, 0);
      describe(" delete%zu@%zu", k, at);
      break;
    }
    case 5: {
      size_t k = 1 + rnd_below(b->n - at < 256 ? b->n - at : 256);
      size_t to = rnd_below(b->n + 1);
      uint8_t copy[256];
      memcpy(copy, b->p + at, k);
      buf_splice(b, to, 0, copy, k);
      describe(" duprange%zu@%zu->%zu", k, at, to);
      break;
    }
    case 6: { /* overlong varint: 11 bytes with the continuation bit */
      uint8_t ff[11];
      memset(ff, 0xff, sizeof ff);
      buf_splice(b, at, rnd_below(2), ff, 10 + rnd_below(2));
      describe(" overlong@%zu", at);
      break;
    }
    case 7: { /* continuation bits set on a run of bytes (a varint that does not end where it should) */
      size_t k = 1 + rnd_below(10);
      for (size_t j = 0; j < k && at + j < b->n; j++) b->p[at + j] |= 0x80;
      describe(" contbits%zu@%zu", k, at);
      break;
    }
    default: { /* a huge length prefix at a recorded LEN field, no fix-up */
      recs *rs = &g_recs;
      rs->n = 0;
      parse_msg(b->p, 0, b->n, -1, 0, rs);
      int i = pick_rec(rs, 2, 0);
      if (i < 0) {
        b->p[at] = 0xff;
        describe(" set@%zu=ff", at);
        break;
      }
      uint8_t tmp[10];
      uint64_t v = rnd_below(2) ? 0xffffffffffffffffull : (1ull << (31 + rnd_below(32)));
      const rec *f = &rs->r[i];
      describe(" hugelen@%zu", f->val);
      buf_splice(b, f->val, f->pay - f->val, tmp, put_varint(tmp, v));
      break;
    }
  }
}

/* ---- corpus ---- */
typedef struct entry {
  char *name;
  uint8_t *data;
  size_t len;
  int is_model; /* given as a file (weighted higher than the backend cases) */
} entry;

static entry *g_corpus;
static int g_ncorpus;

static void add_file(const char *path, int is_model) {
  FILE *f = fopen(path, "rb");
  if (!f) return;
  uint8_t *data = malloc(PREFIX_BYTES);
  size_t n = fread(data, 1, PREFIX_BYTES, f);
  fclose(f);
  g_corpus = realloc(g_corpus, sizeof(entry) * (size_t)(g_ncorpus + 1));
  g_corpus[g_ncorpus++] = (entry){strdup(path), data, n, is_model};
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void add_folder(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  char **names = NULL;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    names = realloc(names, sizeof(char *) * (size_t)(n + 1));
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof(char *), cmp_str); /* readdir order is not deterministic */
  for (int i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/model.onnx", dir, names[i]);
    add_file(path, 0);
    free(names[i]);
  }
  free(names);
}

/* ---- running one model ---- */
enum { ST_LOAD, ST_PLAN, ST_RUN, NSTAGES };
static const char *const stage_names[NSTAGES] = {"load", "plan", "run"};
static long g_counts[NSTAGES][EI_E_INTERNAL + 2];
static long g_skipped_inputs, g_skipped_run;
static int g_fail, g_pass, g_verbose;

static int check_status(int stage, ei_status s, const char *err) {
  int idx = (int)s >= 0 && (int)s <= (int)EI_E_INTERNAL ? (int)s : EI_E_INTERNAL + 1;
  g_counts[stage][idx]++;
  if (idx > (int)EI_E_INTERNAL) {
    printf("FAIL %s: %s returned status %d, not an ei_status\n", g_desc, stage_names[stage], (int)s);
    return 0;
  }
  if (s != EI_OK && !err[0]) {
    printf("FAIL %s: %s returned %s without a message\n", g_desc, stage_names[stage], ei_strerror(s));
    return 0;
  }
  if (s == EI_E_INTERNAL) {
    printf("FAIL %s: %s returned an internal error: %s\n", g_desc, stage_names[stage], err);
    return 0;
  }
  if (g_verbose && s) printf("  %s: %s: %s\n", stage_names[stage], ei_strerror(s), err);
  return 1;
}

/* Builds zero-filled inputs from the model's input info; returns 0 (and frees) if they would be too big. */
static int make_inputs(const ei_model *m, ei_tensor *in, int n) {
  for (int i = 0; i < n; i++) {
    ei_value_info info;
    memset(&in[i], 0, sizeof in[i]);
    if (ei_model_input_info(m, i, &info)) return 0;
    in[i].dtype = info.dtype;
    in[i].rank = info.rank >= 0 ? info.rank : 1;
    size_t bytes = ei_dtype_size(info.dtype);
    for (int d = 0; d < in[i].rank; d++) {
      int64_t v = info.rank >= 0 ? info.dims[d] : -1;
      in[i].dims[d] = v >= 0 ? v : 1 + (int64_t)rnd_below(2);
      if (in[i].dims[d] > (int64_t)MAX_INPUT_BYTES) return 0;
      bytes *= (size_t)in[i].dims[d];
      if (bytes > MAX_INPUT_BYTES) return 0;
    }
  }
  for (int i = 0; i < n; i++) {
    size_t bytes = (size_t)ei_tensor_numel(&in[i]) * ei_dtype_size(in[i].dtype);
    in[i].data = calloc(1, bytes ? bytes : 1);
  }
  return 1;
}

static int exercise(const uint8_t *data, size_t len) {
  char err[512] = "";
  ei_model_options opt;
  ei_model_options_init(&opt);
  opt.max_arena_bytes = ARENA_CAP;
  ei_model *m = (ei_model *)(uintptr_t)1; /* must become NULL on failure */
  ei_status s = ei_model_load_memory(data, len, NULL, &opt, &m, err, sizeof err);
  int ok = check_status(ST_LOAD, s, err);
  if (s) {
    if (m) {
      printf("FAIL %s: failed load left *out non-NULL\n", g_desc);
      ok = 0;
    }
    return ok;
  }
  /* Touch the introspection API on the loaded model. */
  ei_model_stats st;
  ei_model_get_stats(m, &st);
  for (int i = 0; i < ei_model_node_count(m); i++) {
    ei_node_info ni;
    if (ei_model_node_info(m, i, &ni) || !ni.op_type || !ni.name) {
      printf("FAIL %s: ei_model_node_info(%d) failed on a loaded model\n", g_desc, i);
      ok = 0;
    }
  }
  int nin = ei_model_input_count(m), nout = ei_model_output_count(m);
  ei_tensor *in = calloc((size_t)nin + 1, sizeof(ei_tensor));
  ei_tensor *out = calloc((size_t)nout + 1, sizeof(ei_tensor));
  ei_session *sess = NULL;
  err[0] = 0;
  if ((s = ei_session_create(m, NULL, &sess, err, sizeof err))) {
    ok &= check_status(ST_PLAN, s, err);
    goto done;
  }
  if (!make_inputs(m, in, nin)) {
    g_skipped_inputs++;
    goto done;
  }
  err[0] = 0;
  s = ei_session_plan(sess, nin, in, err, sizeof err);
  ok &= check_status(ST_PLAN, s, err);
  if (s) goto done;
  ei_plan_stats ps;
  if (ei_session_plan_stats(sess, &ps) == EI_OK && (ps.arena_bytes > MAX_RUN_ARENA || ps.macs > MAX_RUN_MACS)) {
    g_skipped_run++;
    goto done;
  }
  err[0] = 0;
  s = ei_session_run(sess, nin, in, nout, out, err, sizeof err);
  ok &= check_status(ST_RUN, s, err);
done:
  ei_session_destroy(sess);
  for (int i = 0; i < nin; i++) free(in[i].data);
  free(in);
  free(out);
  ei_model_destroy(m);
  return ok;
}

/* ---- crash reporting ---- */
static void on_death(void) {
  static const char pre[] = "\ntest_fuzz: crashed in case:";
  if (write(2, pre, sizeof pre - 1) < 0) return;
  if (write(2, g_desc, strlen(g_desc)) < 0) return;
  if (write(2, "\n", 1) < 0) return;
}

static void on_signal(int sig) {
  on_death();
  signal(sig, SIG_DFL);
  raise(sig);
}

/* UBSan (a runtime separate from ASan's under gcc) aborts on its first report, so SIGABRT names the case. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void) { return "print_stacktrace=1:halt_on_error=1:abort_on_error=1"; }

static void install_crash_reporting(void) {
  signal(SIGABRT, on_signal);
#ifdef FUZZ_ASAN
  __sanitizer_set_death_callback(on_death); /* ASan reports */
#else
  int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) signal(sigs[i], on_signal);
#endif
}

/* Picks a corpus entry: files given on the command line get 30% of the cases. */
static int pick_entry(int nmodels) {
  if (nmodels && (nmodels == g_ncorpus || rnd_below(10) < 3)) {
    int k = (int)rnd_below((size_t)nmodels);
    for (int i = 0; i < g_ncorpus; i++)
      if (g_corpus[i].is_model && k-- == 0) return i;
  }
  int k = (int)rnd_below((size_t)(g_ncorpus - nmodels));
  for (int i = 0; i < g_ncorpus; i++)
    if (!g_corpus[i].is_model && k-- == 0) return i;
  return 0;
}

/* Case c has its own PRNG stream (from the seed and c), so --only c replays it exactly. */
static void run_case(uint64_t seed, long c, int nmodels, buf *b) {
  g_rng = seed * 0x2545f4914f6cdd1dull + (uint64_t)c * 0x9e3779b97f4a7c15ull;
  int e = pick_entry(nmodels);
  snprintf(g_desc, sizeof g_desc, "#%ld %s:", c, g_corpus[e].name);
  b->n = 0;
  buf_splice(b, 0, 0, g_corpus[e].data, g_corpus[e].len);
  size_t r = rnd_below(10);
  int nm = r < 6 ? 1 : r < 9 ? 2 : 3;
  for (int k = 0; k < nm; k++)
    if (!(rnd_below(10) < 7 && mutate_structured(b))) mutate_raw(b);
  if (g_verbose) printf("%s\n", g_desc);
  if (exercise(b->p, b->n))
    g_pass++;
  else
    g_fail++;
}

int main(int argc, char **argv) {
  long ncases = 20000, only = -1;
  uint64_t seed = 0x0eed;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--cases") && i + 1 < argc) {
      ncases = atol(argv[++i]);
    } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
      seed = strtoull(argv[++i], NULL, 0);
    } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
      only = atol(argv[++i]);
    } else if (!strcmp(argv[i], "-v")) {
      g_verbose = 1;
    } else {
      struct stat st;
      if (stat(argv[i], &st)) {
        printf("note: %s does not exist, skipped\n", argv[i]);
      } else if (S_ISDIR(st.st_mode)) {
        add_folder(argv[i]);
      } else {
        add_file(argv[i], 1);
      }
    }
  }
  if (!g_ncorpus) {
    printf("no corpus: give a folder of backend cases or .onnx files\n0 passed, 1 failed\n");
    return 1;
  }
  int nmodels = 0;
  for (int i = 0; i < g_ncorpus; i++) nmodels += g_corpus[i].is_model;
  setvbuf(stdout, NULL, _IOLBF, 0); /* keep the log when a case crashes */
  install_crash_reporting();
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  buf b = {0};
  if (only >= 0) g_verbose = 1;
  /* Unmutated corpus first. */
  long base_ok = 0;
  if (only < 0) {
    for (int e = 0; e < g_ncorpus; e++) {
      snprintf(g_desc, sizeof g_desc, "unmutated %s", g_corpus[e].name);
      g_rng = seed ^ (uint64_t)e;
      long before = g_counts[ST_LOAD][EI_OK];
      if (exercise(g_corpus[e].data, g_corpus[e].len))
        g_pass++;
      else
        g_fail++;
      base_ok += g_counts[ST_LOAD][EI_OK] - before;
    }
    printf("corpus: %d entries (%d model files), %ld load unmutated\n", g_ncorpus, nmodels, base_ok);
  }
  for (long c = 0; c < ncases; c++)
    if (only < 0 || c == only) run_case(seed, c, nmodels, &b);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  printf("%ld mutated cases in %.1f s (seed 0x%llx)\n", only >= 0 ? 1 : ncases, secs, (unsigned long long)seed);
  for (int st = 0; st < NSTAGES; st++) {
    printf("%-5s", stage_names[st]);
    for (int k = 0; k <= (int)EI_E_INTERNAL + 1; k++)
      if (g_counts[st][k])
        printf("  %s: %ld", k <= (int)EI_E_INTERNAL ? ei_strerror((ei_status)k) : "bad status", g_counts[st][k]);
    printf("\n");
  }
  printf("inputs too large (not planned): %ld, plans too large (not run): %ld\n", g_skipped_inputs, g_skipped_run);
  for (int e = 0; e < g_ncorpus; e++) {
    free(g_corpus[e].name);
    free(g_corpus[e].data);
  }
  free(g_corpus);
  free(b.p);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
