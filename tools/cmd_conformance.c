/* edgeinfer conformance: runs ONNX backend test cases (model.onnx + test_data_set_N/{input,output}_K.pb). */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char *help =
    "usage: edgeinfer conformance PATH... [--expect-fail FILE] [--errata FILE] [--rtol R] [--atol A]\n"
    "  PATH is a case folder (model.onnx + test_data_set_*) or a folder of them.\n"
    "  Prints PASS/FAIL per case and 'N passed, M failed'; exits 1 on any unexpected failure.\n"
    "  --expect-fail FILE   case names (one per line, # comments) expected to fail\n"
    "  --errata FILE        corrections of expected outputs that contradict the operator's specification, one\n"
    "                       per line: CASE DATA_SET OUTPUT_INDEX ELEMENT PUBLISHED CORRECTED (# comments). The\n"
    "                       published value must be the one in the file (else the case fails: the erratum no\n"
    "                       longer describes the data); the case is then compared with the corrected value\n";

typedef struct erratum {
  char name[160], set[64];
  int output;
  long long element;
  double published, corrected;
} erratum;

typedef struct conf {
  double rtol, atol;
  char **xfail;
  int nxfail;
  erratum *errata;
  int nerrata;
  int passed, failed, unexpected, xfailed, corrected;
} conf;

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}
static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int list_dir(const char *dir, const char *prefix, char ***out) {
  DIR *d = opendir(dir);
  *out = NULL;
  if (!d) return 0;
  int n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix))) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **nv = realloc(*out, sizeof(char *) * (size_t)cap);
      if (!nv) break;
      *out = nv;
    }
    (*out)[n++] = strdup(e->d_name);
  }
  closedir(d);
  if (n) qsort(*out, (size_t)n, sizeof(char *), cmp_str);
  return n;
}
static void free_list(char **v, int n) {
  for (int i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* Compares one output; writes a reason on mismatch. */
static int compare(const ei_tensor *got, const ei_tensor *want, const conf *cf, char *why, size_t wl) {
  if (got->dtype != want->dtype)
    return snprintf(why, wl, "dtype %s, expected %s", ei_dtype_name(got->dtype), ei_dtype_name(want->dtype)), 0;
  int same = got->rank == want->rank;
  for (int d = 0; same && d < got->rank; d++) same = got->dims[d] == want->dims[d];
  if (!same) {
    char a[128] = "", b[128] = "";
    for (int d = 0; d < got->rank; d++) snprintf(a + strlen(a), sizeof a - strlen(a), "%s%lld", d ? "," : "", (long long)got->dims[d]);
    for (int d = 0; d < want->rank; d++) snprintf(b + strlen(b), sizeof b - strlen(b), "%s%lld", d ? "," : "", (long long)want->dims[d]);
    return snprintf(why, wl, "shape [%s], expected [%s]", a, b), 0;
  }
  int64_t n = ei_tensor_numel(got);
  if (got->dtype == EI_FLOAT || got->dtype == EI_DOUBLE) {
    for (int64_t i = 0; i < n; i++) {
      double g = got->dtype == EI_FLOAT ? ((float *)got->data)[i] : ((double *)got->data)[i];
      double w = want->dtype == EI_FLOAT ? ((float *)want->data)[i] : ((double *)want->data)[i];
      if (isnan(w) && isnan(g)) continue;
      if (isinf(w) && g == w) continue;
      if (!(fabs(g - w) <= cf->atol + cf->rtol * fabs(w)))
        return snprintf(why, wl, "element %lld is %.9g, expected %.9g", (long long)i, g, w), 0;
    }
    return 1;
  }
  size_t nb = (size_t)n * ei_dtype_size(got->dtype);
  if (nb && memcmp(got->data, want->data, nb)) {
    for (size_t i = 0; i < nb; i++)
      if (((uint8_t *)got->data)[i] != ((uint8_t *)want->data)[i]) {
        size_t es = ei_dtype_size(got->dtype);
        return snprintf(why, wl, "element %zu differs", i / es), 0;
      }
  }
  return 1;
}

/* Element i of an integer or float tensor as a double, or write v into it; 0 when the type is not handled. */
static int elem_access(ei_tensor *t, int64_t i, double *get, const double *set) {
  void *p = t->data;
  switch (t->dtype) {
#define EI_ELEM(E, T)                    \
  case E:                                \
    if (set) ((T *)p)[i] = (T)*set;      \
    else *get = (double)((T *)p)[i];     \
    return 1;
    EI_ELEM(EI_FLOAT, float)
    EI_ELEM(EI_INT8, int8_t)
    EI_ELEM(EI_UINT8, uint8_t)
    EI_ELEM(EI_INT32, int32_t)
    EI_ELEM(EI_INT64, int64_t)
#undef EI_ELEM
    default: return 0;
  }
}

/* Applies the errata of (case, data set) to the expected outputs; returns the number applied, or -1 with a
 * reason when an erratum does not describe the data. */
static int apply_errata(const conf *cf, const char *name, const char *set, ei_tensor *want, int nw, char *why,
                        size_t wl) {
  int applied = 0;
  for (int e = 0; e < cf->nerrata; e++) {
    const erratum *x = &cf->errata[e];
    if (strcmp(x->name, name) || strcmp(x->set, set)) continue;
    double v = 0;
    if (x->output < 0 || x->output >= nw || x->element < 0 || x->element >= ei_tensor_numel(&want[x->output]) ||
        !elem_access(&want[x->output], x->element, &v, NULL) || v != x->published)
      return snprintf(why, wl, "the erratum for %s output %d element %lld does not match the data (it holds %g, "
                      "the erratum says %g)", set, x->output, x->element, v, x->published), -1;
    elem_access(&want[x->output], x->element, NULL, &x->corrected);
    applied++;
  }
  return applied;
}

/* Runs one case; returns 1 pass, 0 fail (reason in why). */
static int run_case(const char *dir, const char *name, const conf *cf, int *ncorrected, char *why, size_t wl) {
  char path[4096], err[1024];
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  ei_model *m = NULL;
  ei_session *s = NULL;
  ei_status st = ei_model_load(path, NULL, &m, err, sizeof err);
  if (st) return snprintf(why, wl, "%s (%s)", err, ei_strerror(st)), 0;
  int ok = 1;
  char **sets;
  int nsets = list_dir(dir, "test_data_set_", &sets);
  if (!nsets) {
    snprintf(why, wl, "no test_data_set_* folders");
    ok = 0;
  }
  if (ok && ei_session_create(m, NULL, &s, err, sizeof err)) {
    snprintf(why, wl, "%s", err);
    ok = 0;
  }
  int nin = ei_model_input_count(m), nout = ei_model_output_count(m);
  for (int k = 0; ok && k < nsets; k++) {
    ei_tensor ins[32], want[32], got[32];
    int ni = 0, nw = 0;
    memset(ins, 0, sizeof ins);
    memset(want, 0, sizeof want);
    for (int i = 0; ok && i < nin && i < 32; i++) {
      snprintf(path, sizeof path, "%s/%s/input_%d.pb", dir, sets[k], i);
      if (ei_tensor_load(path, &ins[i], err, sizeof err)) {
        snprintf(why, wl, "%.1000s: %.900s", path, err);
        ok = 0;
      }
      ni = i + 1;
    }
    for (int i = 0; ok && i < nout && i < 32; i++) {
      snprintf(path, sizeof path, "%s/%s/output_%d.pb", dir, sets[k], i);
      if (ei_tensor_load(path, &want[i], err, sizeof err)) {
        snprintf(why, wl, "%.1000s: %.900s", path, err);
        ok = 0;
      }
      nw = i + 1;
    }
    if (ok) {
      const int napplied = apply_errata(cf, name, sets[k], want, nw, why, wl);
      if (napplied < 0) ok = 0;
      else *ncorrected += napplied;
    }
    if (ok) {
      st = ei_session_run(s, nin, ins, nout, got, err, sizeof err);
      if (st) {
        snprintf(why, wl, "%s (%s)", err, ei_strerror(st));
        ok = 0;
      }
      for (int i = 0; ok && i < nout; i++) {
        char r[512];
        if (!compare(&got[i], &want[i], cf, r, sizeof r)) {
          ei_value_info vi;
          ei_model_output_info(m, i, &vi);
          snprintf(why, wl, "%s: output '%s': %s", sets[k], vi.name, r);
          ok = 0;
        }
      }
    }
    for (int i = 0; i < ni; i++) ei_tensor_free(&ins[i]);
    for (int i = 0; i < nw; i++) ei_tensor_free(&want[i]);
  }
  free_list(sets, nsets);
  ei_session_destroy(s);
  ei_model_destroy(m);
  return ok;
}

static void do_case(const char *dir, conf *cf) {
  const char *name = strrchr(dir, '/');
  name = name ? name + 1 : dir;
  int expected_fail = 0;
  for (int i = 0; i < cf->nxfail; i++) expected_fail |= !strcmp(cf->xfail[i], name);
  char why[2048] = "";
  int ncorrected = 0;
  if (run_case(dir, name, cf, &ncorrected, why, sizeof why)) {
    printf("PASS %s%s%s\n", name, ncorrected ? " (expected output corrected by an erratum)" : "",
           expected_fail ? " (listed as expected to fail)" : "");
    cf->passed++;
    cf->corrected += ncorrected > 0;
  } else {
    printf("FAIL %s: %s%s\n", name, why, expected_fail ? " (expected)" : "");
    cf->failed++;
    if (expected_fail) cf->xfailed++;
    else cf->unexpected++;
  }
  fflush(stdout);
}

static void walk(const char *path, conf *cf) {
  char p[4096];
  snprintf(p, sizeof p, "%s/model.onnx", path);
  if (is_file(p)) {
    do_case(path, cf);
    return;
  }
  char **ents;
  int n = list_dir(path, "", &ents);
  for (int i = 0; i < n; i++) {
    snprintf(p, sizeof p, "%s/%s", path, ents[i]);
    char mp[4200];
    snprintf(mp, sizeof mp, "%s/model.onnx", p);
    if (is_dir(p) && is_file(mp)) do_case(p, cf);
  }
  free_list(ents, n);
}

int cmd_conformance(int argc, char **argv) {
  conf cf = {1e-3, 1e-7, NULL, 0, NULL, 0, 0, 0, 0, 0, 0};
  const char *paths[256];
  int np = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("%s", help);
      return 0;
    } else if (!strcmp(argv[i], "--expect-fail") && i + 1 < argc) {
      FILE *f = fopen(argv[++i], "r");
      if (!f) return cli_die("cannot read %s", argv[i]), 2;
      char line[512];
      while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n# \t")] = 0;
        if (!line[0]) continue;
        char **nv = realloc(cf.xfail, sizeof(char *) * (size_t)(cf.nxfail + 1));
        if (!nv) break;
        cf.xfail = nv;
        cf.xfail[cf.nxfail++] = strdup(line);
      }
      fclose(f);
    } else if (!strcmp(argv[i], "--errata") && i + 1 < argc) {
      FILE *f = fopen(argv[++i], "r");
      if (!f) return cli_die("cannot read %s", argv[i]), 2;
      char line[512];
      int lineno = 0, bad = 0;
      while (!bad && fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n#")] = 0;
        erratum x;
        char extra[2];
        int n = sscanf(line, "%159s %63s %d %lld %lf %lf %1s", x.name, x.set, &x.output, &x.element, &x.published,
                       &x.corrected, extra);
        if (n <= 0) continue;
        erratum *nv = n == 6 ? realloc(cf.errata, sizeof(erratum) * (size_t)(cf.nerrata + 1)) : NULL;
        if (!nv) {
          bad = 1;
          break;
        }
        cf.errata = nv;
        cf.errata[cf.nerrata++] = x;
      }
      fclose(f);
      if (bad) {
        free(cf.errata);
        return cli_die("%s:%d: expected CASE DATA_SET OUTPUT_INDEX ELEMENT PUBLISHED CORRECTED", argv[i], lineno), 2;
      }
    } else if (!strcmp(argv[i], "--rtol") && i + 1 < argc) {
      cf.rtol = atof(argv[++i]);
    } else if (!strcmp(argv[i], "--atol") && i + 1 < argc) {
      cf.atol = atof(argv[++i]);
    } else if (argv[i][0] == '-') {
      return cli_die("conformance: unknown option '%s'", argv[i]), 2;
    } else if (np < 256) {
      paths[np++] = argv[i];
    }
  }
  if (!np) return cli_die("conformance: no PATH given (see --help)"), 2;
  for (int i = 0; i < np; i++) {
    if (!is_dir(paths[i])) {
      cli_die("conformance: '%s' is not a folder", paths[i]);
      cf.unexpected++;
      continue;
    }
    walk(paths[i], &cf);
  }
  printf("%d passed, %d failed\n", cf.passed, cf.failed);
  if (cf.corrected) fprintf(stderr, "(%d of the passes compared against an erratum's corrected value)\n", cf.corrected);
  free(cf.errata);
  if (cf.xfailed) fprintf(stderr, "(%d of the failures were expected)\n", cf.xfailed);
  for (int i = 0; i < cf.nxfail; i++) free(cf.xfail[i]);
  free(cf.xfail);
  return cf.unexpected ? 1 : 0;
}
