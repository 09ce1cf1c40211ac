/* src/server/config.c: config.json -> ei__model_config (see config.h for the format). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"

static ei_status cerr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static ei_status cerr(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    int n = snprintf(err, errlen, "config.json: ");
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < errlen) vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return EI_E_INVALID_MODEL;
}

void ei__config_defaults(ei__model_config *c) {
  memset(c, 0, sizeof *c);
  c->max_batch_size = -1;
  c->dynamic_batching = -1;
  c->instance_count = 1;
  c->vp = EI__VP_LATEST;
  c->vp_latest = 1;
  ei_preprocess_init(&c->pre);
  c->top_k = 5;
}

/* An integer, or a string of digits (protobuf JSON's int64). */
static int get_int(const json_t *v, int64_t lo, int64_t hi, int64_t *out) {
  int64_t x;
  if (json_is_integer(v)) {
    x = (int64_t)json_integer_value(v);
  } else if (json_is_string(v)) {
    const char *s = json_string_value(v);
    char *e;
    errno = 0;
    long long l = strtoll(s, &e, 10);
    if (e == s || *e || errno) return 0;
    x = l;
  } else if (json_is_real(v)) {
    double d = json_real_value(v);
    if (d != (double)(int64_t)d) return 0;
    x = (int64_t)d;
  } else {
    return 0;
  }
  if (x < lo || x > hi) return 0;
  *out = x;
  return 1;
}

static int get_num(const json_t *v, float *out) {
  if (!json_is_number(v)) return 0;
  *out = (float)json_number_value(v);
  return 1;
}

static ei__ks_dtype parse_type(const char *s) {
  if (!strncmp(s, "TYPE_", 5)) s += 5;
  if (!strcmp(s, "STRING")) return EI_KS_BYTES;
  return ei__ks_dtype_parse(s);
}

static ei_status parse_tensors(const json_t *arr, const char *key, ei__cfg_tensor *out, int *n, int batching_dim,
                               char *err, size_t errlen) {
  (void)batching_dim;
  if (!json_is_array(arr)) return cerr(err, errlen, "\"%s\" must be an array", key);
  if (json_array_size(arr) > EI__CFG_MAX_IO) return cerr(err, errlen, "\"%s\" lists more than %d tensors", key, EI__CFG_MAX_IO);
  *n = 0;
  size_t i;
  json_t *t;
  json_array_foreach(arr, i, t) {
    ei__cfg_tensor *ct = &out[(*n)++];
    memset(ct, 0, sizeof *ct);
    ct->rank = -1;
    if (!json_is_object(t)) return cerr(err, errlen, "%s[%zu] must be an object", key, i);
    const json_t *name = json_object_get(t, "name");
    if (!json_is_string(name) || !json_string_length(name) || json_string_length(name) >= sizeof ct->name)
      return cerr(err, errlen, "%s[%zu].name must be a non-empty string", key, i);
    snprintf(ct->name, sizeof ct->name, "%s", json_string_value(name));
    for (int k = 0; k < *n - 1; k++)
      if (!strcmp(out[k].name, ct->name)) return cerr(err, errlen, "%s '%s' is listed twice", key, ct->name);
    const json_t *dt = json_object_get(t, "data_type");
    if (dt) {
      if (!json_is_string(dt) || (ct->dtype = parse_type(json_string_value(dt))) == EI_KS_INVALID)
        return cerr(err, errlen, "%s '%s': unknown data_type (e.g. \"TYPE_FP32\")", key, ct->name);
    }
    const json_t *dims = json_object_get(t, "dims");
    if (dims) {
      if (!json_is_array(dims) || json_array_size(dims) > EI_KS_MAX_RANK)
        return cerr(err, errlen, "%s '%s': dims must be an array of at most %d integers", key, ct->name,
                    EI_KS_MAX_RANK);
      ct->rank = (int)json_array_size(dims);
      size_t d;
      json_t *v;
      json_array_foreach(dims, d, v) {
        int64_t x;
        if (!get_int(v, -1, INT64_MAX / 2, &x) || x == 0)
          return cerr(err, errlen, "%s '%s': dims[%zu] must be a positive integer or -1", key, ct->name, d);
        ct->dims[d] = x;
      }
    }
    const json_t *lf = json_object_get(t, "label_filename");
    if (lf) {
      if (!json_is_string(lf) || json_string_length(lf) >= sizeof ct->label_filename)
        return cerr(err, errlen, "%s '%s': label_filename must be a string", key, ct->name);
      snprintf(ct->label_filename, sizeof ct->label_filename, "%s", json_string_value(lf));
    }
  }
  return EI_OK;
}

int ei__config_parse_cpus(const char *s, int *cpus, int cap) {
  int n = 0;
  while (*s) {
    char *e;
    long a = strtol(s, &e, 10), b;
    if (e == s || a < 0 || a > 4095) return -1;
    b = a;
    s = e;
    if (*s == '-') {
      b = strtol(s + 1, &e, 10);
      if (e == s + 1 || b < a || b > 4095) return -1;
      s = e;
    }
    for (long k = a; k <= b; k++) {
      if (n == cap) return -1;
      cpus[n++] = (int)k;
    }
    if (*s == ',') s++;
    else if (*s) return -1;
  }
  return n;
}

static ei_status parse_pre(const json_t *p, ei__model_config *c, char *err, size_t errlen) {
  if (!json_is_object(p)) return cerr(err, errlen, "edgeinfer.preprocessing must be an object");
  const json_t *v;
  int64_t x;
  if ((v = json_object_get(p, "resize"))) {
    if (!get_int(v, 0, 1 << 16, &x)) return cerr(err, errlen, "edgeinfer.preprocessing.resize must be 0..65536");
    c->pre.resize = (int)x;
    c->pre_set |= EI__PRE_RESIZE;
  }
  if ((v = json_object_get(p, "crop"))) {
    if (json_is_array(v) && json_array_size(v) == 2) {
      int64_t w, h;
      if (!get_int(json_array_get(v, 0), 0, 1 << 16, &w) || !get_int(json_array_get(v, 1), 0, 1 << 16, &h))
        return cerr(err, errlen, "edgeinfer.preprocessing.crop must be N or [W, H]");
      c->pre.crop_w = (int)w, c->pre.crop_h = (int)h;
    } else if (get_int(v, 0, 1 << 16, &x)) {
      c->pre.crop_w = c->pre.crop_h = (int)x;
    } else {
      return cerr(err, errlen, "edgeinfer.preprocessing.crop must be N or [W, H]");
    }
    c->pre_set |= EI__PRE_CROP;
  }
  static const char *const three[] = {"mean", "std"};
  for (int k = 0; k < 2; k++) {
    if (!(v = json_object_get(p, three[k]))) continue;
    float *dst = k ? c->pre.std : c->pre.mean;
    if (json_is_number(v)) {
      float f = (float)json_number_value(v);
      dst[0] = dst[1] = dst[2] = f;
    } else if (json_is_array(v) && (json_array_size(v) == 3 || json_array_size(v) == 1)) {
      for (size_t i = 0; i < 3; i++)
        if (!get_num(json_array_get(v, json_array_size(v) == 1 ? 0 : i), &dst[i]))
          return cerr(err, errlen, "edgeinfer.preprocessing.%s must be a number or 3 numbers", three[k]);
    } else {
      return cerr(err, errlen, "edgeinfer.preprocessing.%s must be a number or 3 numbers", three[k]);
    }
    if (k && (dst[0] == 0 || dst[1] == 0 || dst[2] == 0))
      return cerr(err, errlen, "edgeinfer.preprocessing.std must not be 0");
  }
  if ((v = json_object_get(p, "scale")) && !get_num(v, &c->pre.scale))
    return cerr(err, errlen, "edgeinfer.preprocessing.scale must be a number");
  if ((v = json_object_get(p, "channels"))) {
    if (!get_int(v, 1, 3, &x) || x == 2) return cerr(err, errlen, "edgeinfer.preprocessing.channels must be 1 or 3");
    c->pre.channels = (int)x;
    c->pre_set |= EI__PRE_CHANNELS;
  }
  if ((v = json_object_get(p, "grey")) || (v = json_object_get(p, "gray"))) {
    if (!json_is_boolean(v)) return cerr(err, errlen, "edgeinfer.preprocessing.grey must be true or false");
    c->pre.channels = json_is_true(v) ? 1 : 3;
    c->pre_set |= EI__PRE_CHANNELS;
  }
  if ((v = json_object_get(p, "layout"))) {
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    if (!strcmp(s, "NCHW")) c->layout_nhwc = 0;
    else if (!strcmp(s, "NHWC")) c->layout_nhwc = 1;
    else return cerr(err, errlen, "edgeinfer.preprocessing.layout must be \"NCHW\" or \"NHWC\"");
  }
  return EI_OK;
}

static ei_status parse_edgeinfer(const json_t *e, ei__model_config *c, char *err, size_t errlen) {
  if (!json_is_object(e)) return cerr(err, errlen, "\"edgeinfer\" must be an object");
  const json_t *v;
  int64_t x;
  if ((v = json_object_get(e, "threads"))) {
    if (!get_int(v, 0, 1024, &x)) return cerr(err, errlen, "edgeinfer.threads must be 0..1024");
    c->threads = (int)x;
  }
  if ((v = json_object_get(e, "cpus"))) {
    if (json_is_string(v)) {
      c->ncpus = ei__config_parse_cpus(json_string_value(v), c->cpus, 256);
      if (c->ncpus < 0) return cerr(err, errlen, "edgeinfer.cpus: bad CPU list (e.g. \"0-3\" or [0, 2])");
    } else if (json_is_array(v) && json_array_size(v) <= 256) {
      size_t i;
      json_t *it;
      c->ncpus = 0;
      json_array_foreach(v, i, it) {
        if (!get_int(it, 0, 4095, &x)) return cerr(err, errlen, "edgeinfer.cpus[%zu] must be a CPU number", i);
        c->cpus[c->ncpus++] = (int)x;
      }
    } else {
      return cerr(err, errlen, "edgeinfer.cpus must be a list of CPU numbers or a string like \"0-3\"");
    }
  }
  if ((v = json_object_get(e, "preprocessing"))) {
    ei_status st = parse_pre(v, c, err, errlen);
    if (st) return st;
  }
  if ((v = json_object_get(e, "labels"))) {
    if (!json_is_string(v) || json_string_length(v) >= sizeof c->labels)
      return cerr(err, errlen, "edgeinfer.labels must be a file name");
    snprintf(c->labels, sizeof c->labels, "%s", json_string_value(v));
  }
  if ((v = json_object_get(e, "max_queue"))) {
    if (!get_int(v, 1, 1 << 20, &x)) return cerr(err, errlen, "edgeinfer.max_queue must be 1..1048576");
    c->max_queue = (int)x;
  }
  if ((v = json_object_get(e, "top_k"))) {
    if (!get_int(v, 1, 1 << 20, &x)) return cerr(err, errlen, "edgeinfer.top_k must be a positive integer");
    c->top_k = (int)x;
  }
  return EI_OK;
}

static ei_status parse_root(const json_t *root, const char *model_name, ei__model_config *c, char *err,
                            size_t errlen) {
  if (!json_is_object(root)) return cerr(err, errlen, "the top level must be an object");
  const json_t *v;
  int64_t x;
  ei_status st;
  if ((v = json_object_get(root, "name"))) {
    if (!json_is_string(v)) return cerr(err, errlen, "name must be a string");
    if (model_name && json_string_length(v) && strcmp(json_string_value(v), model_name))
      return cerr(err, errlen, "name '%s' does not match the model folder '%s'", json_string_value(v), model_name);
  }
  if ((v = json_object_get(root, "max_batch_size"))) {
    if (!get_int(v, 0, EI__CFG_MAX_BATCH, &x))
      return cerr(err, errlen, "max_batch_size must be an integer in 0..%d", EI__CFG_MAX_BATCH);
    c->max_batch_size = (int)x;
  }
  if ((v = json_object_get(root, "input")) && (st = parse_tensors(v, "input", c->inputs, &c->ninputs, 0, err, errlen)))
    return st;
  if ((v = json_object_get(root, "output")) &&
      (st = parse_tensors(v, "output", c->outputs, &c->noutputs, 0, err, errlen)))
    return st;
  if ((v = json_object_get(root, "dynamic_batching"))) {
    if (!json_is_object(v)) return cerr(err, errlen, "dynamic_batching must be an object");
    c->dynamic_batching = 1;
    const json_t *d;
    if ((d = json_object_get(v, "max_queue_delay_microseconds"))) {
      if (!get_int(d, 0, 60 * 1000000LL, &x))
        return cerr(err, errlen, "dynamic_batching.max_queue_delay_microseconds must be 0..60000000");
      c->max_queue_delay_us = (uint64_t)x;
    }
    if ((d = json_object_get(v, "preferred_batch_size"))) {
      if (!json_is_array(d) || json_array_size(d) > EI__CFG_MAX_PREFERRED)
        return cerr(err, errlen, "dynamic_batching.preferred_batch_size must be an array of at most %d sizes",
                    EI__CFG_MAX_PREFERRED);
      size_t i;
      json_t *it;
      json_array_foreach(d, i, it) {
        if (!get_int(it, 1, EI__CFG_MAX_BATCH, &x))
          return cerr(err, errlen, "dynamic_batching.preferred_batch_size[%zu] must be a positive integer", i);
        c->preferred[c->npreferred++] = (int)x;
      }
    }
  }
  if ((v = json_object_get(root, "instance_group"))) {
    if (!json_is_array(v)) return cerr(err, errlen, "instance_group must be an array");
    size_t i;
    json_t *g;
    int total = 0;
    json_array_foreach(v, i, g) {
      if (!json_is_object(g)) return cerr(err, errlen, "instance_group[%zu] must be an object", i);
      const json_t *cnt = json_object_get(g, "count"), *kind = json_object_get(g, "kind");
      x = 1;
      if (cnt && !get_int(cnt, 1, EI__CFG_MAX_INSTANCES, &x))
        return cerr(err, errlen, "instance_group[%zu].count must be 1..%d", i, EI__CFG_MAX_INSTANCES);
      if (kind && (!json_is_string(kind) || (strcmp(json_string_value(kind), "KIND_CPU") &&
                                             strcmp(json_string_value(kind), "KIND_AUTO"))))
        return cerr(err, errlen, "instance_group[%zu].kind: only KIND_CPU is available", i);
      total += (int)x;
    }
    if (total > EI__CFG_MAX_INSTANCES)
      return cerr(err, errlen, "instance_group: %d instances in all, at most %d", total, EI__CFG_MAX_INSTANCES);
    if (total > 0) c->instance_count = total;
  }
  if ((v = json_object_get(root, "version_policy"))) {
    const json_t *p;
    if (!json_is_object(v) || json_object_size(v) != 1)
      return cerr(err, errlen, "version_policy must be one of {\"latest\": {...}}, {\"all\": {}}, {\"specific\": {...}}");
    if ((p = json_object_get(v, "latest"))) {
      c->vp = EI__VP_LATEST;
      const json_t *n = json_is_object(p) ? json_object_get(p, "num_versions") : NULL;
      if (!json_is_object(p) || (n && !get_int(n, 1, 1 << 20, &x)))
        return cerr(err, errlen, "version_policy.latest.num_versions must be a positive integer");
      c->vp_latest = n ? (int)x : 1;
    } else if ((p = json_object_get(v, "all"))) {
      c->vp = EI__VP_ALL;
    } else if ((p = json_object_get(v, "specific"))) {
      c->vp = EI__VP_SPECIFIC;
      const json_t *vs = json_is_object(p) ? json_object_get(p, "versions") : NULL;
      if (!json_is_array(vs) || !json_array_size(vs) || json_array_size(vs) > EI__CFG_MAX_SPECIFIC)
        return cerr(err, errlen, "version_policy.specific.versions must list 1..%d versions", EI__CFG_MAX_SPECIFIC);
      size_t i;
      json_t *it;
      json_array_foreach(vs, i, it) {
        if (!get_int(it, 0, INT64_MAX, &x))
          return cerr(err, errlen, "version_policy.specific.versions[%zu] must be a version number", i);
        c->vp_specific[c->nvp_specific++] = x;
      }
    } else {
      return cerr(err, errlen, "version_policy must be one of latest, all, specific");
    }
  }
  if ((v = json_object_get(root, "edgeinfer")) && (st = parse_edgeinfer(v, c, err, errlen))) return st;
  return EI_OK;
}

ei_status ei__config_parse(const char *text, size_t len, const char *model_name, ei__model_config *c, char *err,
                           size_t errlen) {
  ei__config_defaults(c);
  c->has_file = 1;
  json_error_t je;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!root) return cerr(err, errlen, "line %d column %d: %s", je.line, je.column, je.text);
  ei_status st = parse_root(root, model_name, c, err, errlen);
  json_decref(root);
  return st;
}

ei_status ei__config_load(const char *path, const char *model_name, ei__model_config *c, char *err, size_t errlen) {
  ei__config_defaults(c);
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT) return EI_OK;
    if (err && errlen) snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return EI_E_IO;
  }
  char *buf = NULL;
  ei_status st = EI_E_IO;
  if (fseek(f, 0, SEEK_END) != 0) goto err;
  long n = ftell(f);
  if (n < 0 || n > (1 << 20)) {
    st = cerr(err, errlen, "larger than 1 MiB");
    goto out;
  }
  rewind(f);
  buf = malloc((size_t)n + 1);
  if (!buf) {
    st = EI_E_NOMEM;
    if (err && errlen) snprintf(err, errlen, "out of memory reading %s", path);
    goto out;
  }
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) goto err;
  st = ei__config_parse(buf, (size_t)n, model_name, c, err, errlen);
  goto out;
err:
  if (err && errlen) snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
out:
  free(buf);
  fclose(f);
  return st;
}
