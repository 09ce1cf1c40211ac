/* src/server/reload.c: hot reload of model versions (--model-control poll|explicit).
 *
 * One loader thread (nice 10) owns every change of the repository after start: it watches the repository with
 * inotify (poll mode; plus a rescan every poll_secs), takes explicit load/unload requests (explicit mode), loads
 * new versions (ei__version_load with loader = 1: SHA256SUMS, plans, warm-up on a single-threaded session of its
 * own, off the serving pool), and publishes a model's new version list and current version under the model's vmu
 * in one step. Requests pin a version at admission (one reference); a version that leaves the list is freed when
 * its last request ends. A failed load leaves what serves untouched; its reason goes to the log, the index and
 * the stats.
 *
 * Eligibility (poll): only all-digit folder names are versions. A folder renamed into the model folder is
 * eligible at once; a folder that was copied in place is eligible once none of its files changed (names,
 * sizes, mtimes: the folder's signature) for settle_ms. A file renamed into a loaded version's folder reloads
 * that version; other changes to a loaded version's files are ignored (the engine copied what it needs at
 * load). A change of config.json (its mtime or size) reloads the model's versions with the new config; a
 * config that does not parse leaves the old one in force. A failed folder is retried when its signature
 * changes or it is renamed again.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "core_impl.h"
#include "strbuf.h"

typedef struct ei__vtrack {
  int64_t number;
  uint64_t sig;       /* the folder's signature when last scanned */
  uint64_t since_ns;  /* when sig last changed (0: present at start) */
  int renamed;        /* arrived by rename: eligible at once */
  int reload;         /* a file was renamed into it while loaded: reload */
  int failed;         /* the last load failed with this signature */
  uint64_t failed_sig;
  int present;
} ei__vtrack;

typedef struct ei__ctl {
  struct ei__ctl *next;
  ei__model *m;
  int load;
  ei__srv_control_cb cb;
  void *ud;
  ei__srv_code code;
  char msg[512];
} ei__ctl;

typedef struct ei__watch {
  int wd;
  ei__model *m;
  int64_t number; /* -1: the model folder, -2: the repository */
} ei__watch;

typedef struct ei__loader {
  pthread_t th;
  int started;
  pthread_mutex_t mu; /* stop, the request queue */
  int stop;
  ei__ctl *qhead, *qtail;
  int efd;  /* eventfd: wakes the thread */
  int ifd;  /* inotify (poll mode), -1 otherwise */
  ei__watch *w;
  int nw, capw;
} ei__loader;

static uint64_t mono_ns(void) { return ei__srv_now_ns(); }

/* ---- tracks and watches ---- */

static ei__vtrack *track(ei__model *m, int64_t number, int create) {
  for (int i = 0; i < m->ntracks; i++)
    if (m->tracks[i].number == number) return &m->tracks[i];
  if (!create) return NULL;
  if (m->ntracks == m->cap_tracks) {
    int cap = m->cap_tracks ? m->cap_tracks * 2 : 16;
    ei__vtrack *nt = realloc(m->tracks, sizeof *nt * (size_t)cap);
    if (!nt) return NULL;
    m->tracks = nt;
    m->cap_tracks = cap;
  }
  ei__vtrack *t = &m->tracks[m->ntracks++];
  memset(t, 0, sizeof *t);
  t->number = number;
  return t;
}

static void watch_add(ei__loader *L, const char *path, ei__model *m, int64_t number) {
  if (L->ifd < 0) return;
  uint32_t mask = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB |
                  IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
  int wd = inotify_add_watch(L->ifd, path, mask);
  if (wd < 0) return; /* the rescan still sees it */
  for (int i = 0; i < L->nw; i++)
    if (L->w[i].wd == wd) {
      L->w[i].m = m;
      L->w[i].number = number;
      return;
    }
  if (L->nw == L->capw) {
    int cap = L->capw ? L->capw * 2 : 64;
    ei__watch *nw = realloc(L->w, sizeof *nw * (size_t)cap);
    if (!nw) return;
    L->w = nw;
    L->capw = cap;
  }
  L->w[L->nw++] = (ei__watch){wd, m, number};
}

static ei__watch *watch_find(ei__loader *L, int wd) {
  for (int i = 0; i < L->nw; i++)
    if (L->w[i].wd == wd) return &L->w[i];
  return NULL;
}

static void watch_forget(ei__loader *L, int wd) {
  for (int i = 0; i < L->nw; i++)
    if (L->w[i].wd == wd) {
      L->w[i] = L->w[--L->nw];
      return;
    }
}

/* A folder's signature: its regular files' names, sizes and mtimes (0 when it cannot be read). */
static uint64_t folder_sig(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  uint64_t sig = 1469598103934665603ull;
  struct dirent *e;
  char p[4400];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    ei__fmt(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat st;
    uint64_t h = 1469598103934665603ull;
    for (const char *c = e->d_name; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
    if (lstat(p, &st) == 0) {
      h = (h ^ (uint64_t)st.st_size) * 1099511628211ull;
      h = (h ^ (uint64_t)st.st_mtim.tv_sec) * 1099511628211ull;
      h = (h ^ (uint64_t)st.st_mtim.tv_nsec) * 1099511628211ull;
      h = (h ^ (uint64_t)st.st_mode) * 1099511628211ull;
    }
    sig += h * 0x9e3779b97f4a7c15ull; /* order independent */
  }
  closedir(d);
  return sig ? sig : 1;
}

static uint64_t file_sig(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  return (uint64_t)st.st_mtim.tv_sec * 1000000007ull + (uint64_t)st.st_mtim.tv_nsec * 31u + (uint64_t)st.st_size + 1;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* The all-digit folders of the model (ascending, unique); updates the tracks. Returns the count. */
static int scan(ei__loader *L, ei__model *m, int64_t *vs, int cap, uint64_t now) {
  int nv = 0;
  for (int i = 0; i < m->ntracks; i++) m->tracks[i].present = 0;
  DIR *d = opendir(m->dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      char p[4400];
      struct stat st;
      if (!ei__repo_all_digits(e->d_name) || nv == cap) continue;
      ei__fmt(p, sizeof p, "%s/%s", m->dir, e->d_name);
      if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
      int64_t num = strtoll(e->d_name, NULL, 10);
      char canon[32];
      ei__fmt(canon, sizeof canon, "%lld", (long long)num);
      if (strcmp(canon, e->d_name)) continue; /* "01": the server loads <number>/ only */
      vs[nv++] = num;
      watch_add(L, p, m, num);
      ei__vtrack *t = track(m, num, 1);
      if (!t) continue;
      uint64_t sig = folder_sig(p);
      if (sig != t->sig) {
        t->sig = sig;
        t->since_ns = now;
      }
      t->present = 1;
    }
    closedir(d);
  }
  /* tracks of folders that are gone */
  for (int i = 0; i < m->ntracks; i++)
    if (!m->tracks[i].present) m->tracks[i--] = m->tracks[--m->ntracks];
  qsort(vs, (size_t)nv, sizeof vs[0], cmp_i64);
  return nv;
}

/* ---- one model: config, versions, swap ---- */

static int is_loaded(ei__version *const *list, int n, int64_t num) {
  for (int i = 0; i < n; i++)
    if (list[i]->number == num) return i;
  return -1;
}

/* Brings model m in line with its folder (and its `enabled` flag). Returns the ms until a pending version
 * settles (-1: none). Loader thread. */
static int reconcile(ei__server *s, ei__loader *L, ei__model *m, ei__ctl *ctl) {
  int mode = s->opt.model_control;
  uint64_t now = mono_ns(), settle = (uint64_t)(s->opt.settle_ms > 0 ? s->opt.settle_ms : 0) * 1000000ull;
  int wait_ms = -1;
  char cpath[4200], err[512], vn[32];
  ei__model_config *ncfg = NULL;
  int cfg_changed = 0;
  ei__version *add[EI__CFG_MAX_SPECIFIC];
  int nadd = 0;
  int force = m->force;
  m->force = 0;
  m->dirty = 0;
  int64_t tried[EI__CFG_MAX_SPECIFIC]; /* failed in this pass */
  int ntried = 0;
  if (force)
    for (int i = 0; i < m->ntracks; i++) m->tracks[i].failed = 0;

  /* config.json */
  ei__fmt(cpath, sizeof cpath, "%s/config.json", m->dir);
  uint64_t csig = file_sig(cpath);
  if (m->enabled && (csig != m->cfg_sig || force || m->cfg_dirty)) {
    m->cfg_dirty = 0;
    ncfg = malloc(sizeof *ncfg);
    if (!ncfg) return 1000;
    if (ei__config_load(cpath, m->name, ncfg, err, sizeof err)) {
      ei__log_msg("model '%s': config.json not applied (the previous one stays in force): %s", m->name, err);
      pthread_mutex_lock(&m->vmu);
      ei__repo_set_failed(m, "", err);
      if (!m->current) ei__fmt(m->reason, sizeof m->reason, "%s", err);
      m->load_failures++;
      ei__fmt(m->load_error, sizeof m->load_error, "config.json: %s", err);
      pthread_mutex_unlock(&m->vmu);
      free(ncfg);
      ncfg = NULL;
      m->cfg_sig = csig;
      m->cfg_bad = 1;
      if (ctl) {
        ctl->code = EI_SRV_INVALID;
        ei__fmt(ctl->msg, sizeof ctl->msg, "failed to load model '%s': %s", m->name, err);
        return -1;
      }
    } else {
      /* memset by ei__config_defaults, so memcmp sees the content (a rewrite within one mtime tick too) */
      cfg_changed = force || m->cfg_bad || memcmp(ncfg, &m->cfg, sizeof *ncfg) != 0;
      m->cfg_sig = csig;
      m->cfg_bad = 0;
      pthread_mutex_lock(&m->vmu);
      ei__repo_clear_failed(m, "");
      pthread_mutex_unlock(&m->vmu);
      if (cfg_changed && !force) ei__log_msg("model '%s': config.json changed: reloading its versions", m->name);
      if (!cfg_changed) { /* the same config (touched, rewritten alike): nothing to apply */
        free(ncfg);
        ncfg = NULL;
      }
    }
  }
  const ei__model_config *cfg = ncfg ? ncfg : &m->cfg;
  if (m->cfg_bad && !ncfg && m->enabled) return -1; /* no config in force: nothing to load (what serves stays) */

  /* folders */
  int64_t vs[1024];
  int nv = scan(L, m, vs, 1024, now);
  /* failures of folders that are gone are forgotten (a policy's missing versions stay listed) */
  pthread_mutex_lock(&m->vmu);
  for (int i = m->nfailed - 1; i >= 0; i--) {
    const ei__failed *f = &m->failed[i];
    if (!f->version[0] || !strncmp(f->reason, "version_policy lists", 20)) continue;
    int64_t num = strtoll(f->version, NULL, 10);
    int present = 0;
    for (int k = 0; k < nv; k++) present |= vs[k] == num;
    if (!present) {
      char fv[32];
      ei__fmt(fv, sizeof fv, "%s", f->version); /* clear_failed moves the entries */
      ei__repo_clear_failed(m, fv);
    }
  }
  pthread_mutex_unlock(&m->vmu);
  /* the loaded list (only this thread changes it) */
  int nold = m->nversions;
  ei__version *old[EI__CFG_MAX_SPECIFIC];
  memcpy(old, m->versions, sizeof(old[0]) * (size_t)nold);

  int64_t sel[EI__CFG_MAX_SPECIFIC];
  int nsel = 0;
  for (;;) {
    /* candidates: loaded, or eligible and not failed as they are */
    int64_t cand[1024];
    int nc = 0;
    for (int i = 0; i < nv; i++) {
      ei__vtrack *t = track(m, vs[i], 0);
      int loaded = is_loaded(old, nold, vs[i]) >= 0 || is_loaded(add, nadd, vs[i]) >= 0;
      int eligible = mode != EI_SRV_CONTROL_POLL || !t || t->since_ns == 0 || t->renamed ||
                     now - t->since_ns >= settle;
      if (!loaded && t && t->failed && t->failed_sig == t->sig && !t->renamed) eligible = 0;
      for (int k = 0; k < ntried; k++)
        if (tried[k] == vs[i] && !loaded) eligible = 0;
      if (!loaded && !eligible && t && mode == EI_SRV_CONTROL_POLL && !(t->failed && t->failed_sig == t->sig)) {
        uint64_t left = t->since_ns + settle > now ? (t->since_ns + settle - now + 999999) / 1000000 : 1;
        if (wait_ms < 0 || (int)left < wait_ms) wait_ms = (int)left;
      }
      if (loaded || eligible) cand[nc++] = vs[i];
    }
    nsel = m->enabled ? ei__repo_select(cfg, cand, nc, sel) : 0;
    /* load what is selected and not loaded yet (or to reload), newest first */
    int64_t next = -1;
    for (int i = nsel - 1; i >= 0 && next < 0; i--) {
      if (is_loaded(add, nadd, sel[i]) >= 0) continue;
      ei__vtrack *t = track(m, sel[i], 0);
      int have = is_loaded(old, nold, sel[i]) >= 0;
      int was_tried = t && t->failed && t->failed_sig == t->sig && !t->renamed;
      for (int k = 0; k < ntried; k++) was_tried |= tried[k] == sel[i];
      if (!have || ((cfg_changed || (t && t->reload)) && !was_tried)) next = sel[i];
    }
    if (next < 0) break;
    ei__vtrack *t = track(m, next, 0);
    ei__fmt(vn, sizeof vn, "%lld", (long long)next);
    pthread_mutex_lock(&m->vmu);
    ei__fmt(m->loading, sizeof m->loading, "%s", vn);
    m->load_attempts++;
    pthread_mutex_unlock(&m->vmu);
    ei__log_msg("model '%s' version %s: loading", m->name, vn);
    if (s->opt.test_load_delay_ms > 0) ei__sleep_ms(s->opt.test_load_delay_ms);
    char why[256] = "";
    uint64_t t0 = mono_ns();
    ei__version *v = ei__version_load(s, m, cfg, next, 1, why, sizeof why);
    pthread_mutex_lock(&m->vmu);
    m->loading[0] = 0;
    if (v) {
      ei__repo_clear_failed(m, vn);
    } else {
      ei__repo_set_failed(m, vn, why);
      m->load_failures++;
      ei__fmt(m->load_error, sizeof m->load_error, "version %s: %s", vn, why);
    }
    pthread_mutex_unlock(&m->vmu);
    if (t) {
      t->renamed = 0;
      t->reload = 0;
      t->failed = !v;
      t->failed_sig = t->sig;
    }
    if (!v) {
      if (ntried < EI__CFG_MAX_SPECIFIC) tried[ntried++] = next;
      else break;
      ei__log_msg("model '%s' version %s failed to load (%s): %s", m->name, vn,
                  is_loaded(old, nold, next) >= 0 ? "the loaded one keeps serving"
                                                  : m->current ? "the current version keeps serving" : "not served",
                  why);
      if (ctl) {
        ctl->code = EI_SRV_INVALID;
        ei__fmt(ctl->msg, sizeof ctl->msg, "failed to load model '%s' version %s: %s", m->name, vn, why);
      }
      continue; /* select again without it */
    }
    ei__log_msg("model '%s' version %s: loaded and warmed up in %.1f ms", m->name, vn, (mono_ns() - t0) / 1e6);
    add[nadd++] = v;
    if (nadd == EI__CFG_MAX_SPECIFIC) break;
  }

  /* the new list: the selection, newly loaded versions taking the place of old ones */
  ei__version *nl[EI__CFG_MAX_SPECIFIC], *drop[2 * EI__CFG_MAX_SPECIFIC];
  int nn = 0, nd = 0;
  for (int i = 0; i < nsel; i++) {
    int a = is_loaded(add, nadd, sel[i]), o = is_loaded(old, nold, sel[i]);
    if (a >= 0) nl[nn++] = add[a];
    else if (o >= 0) nl[nn++] = old[o];
  }
  for (int i = 0; i < nold; i++)
    if (is_loaded(nl, nn, old[i]->number) < 0 || nl[is_loaded(nl, nn, old[i]->number)] != old[i]) drop[nd++] = old[i];
  for (int i = 0; i < nadd; i++)
    if (is_loaded(nl, nn, add[i]->number) < 0) drop[nd++] = add[i]; /* cannot happen; safe */
  int changed = nd > 0 || nn != nold;
  for (int i = 0; !changed && i < nn; i++) changed = nl[i] != old[i];
  if (changed || ncfg) {
    pthread_mutex_lock(&m->mu); /* the executors read these under mu */
    if (ncfg) {
      m->max_queue = ncfg->max_queue > 0 ? ncfg->max_queue : s->opt.max_queue;
      m->delay_ns = ncfg->max_queue_delay_us * 1000;
      m->npreferred = ncfg->npreferred;
      memcpy(m->preferred, ncfg->preferred, sizeof m->preferred);
    }
    pthread_mutex_unlock(&m->mu);
    pthread_mutex_lock(&m->vmu);
    if (ncfg) m->cfg = *ncfg;
    memcpy(m->versions, nl, sizeof(nl[0]) * (size_t)nn);
    m->nversions = nn;
    ei__version *prev = m->current;
    m->current = nn ? nl[nn - 1] : NULL;
    if (m->current) m->reason[0] = 0;
    else if (!m->enabled) ei__fmt(m->reason, sizeof m->reason, "unloaded");
    else if (!m->reason[0] || prev) ei__fmt(m->reason, sizeof m->reason, "%s", m->load_error[0] ? m->load_error : "no version folder");
    pthread_mutex_unlock(&m->vmu);
    if (prev != m->current)
      ei__log_msg("model '%s': current version %s (was %s)", m->name, m->current ? m->current->name : "none",
                  prev ? prev->name : "none");
  }
  pthread_mutex_lock(&m->vmu);
  if (m->current && !m->cfg_bad) ei__repo_clear_failed(m, ""); /* "no version folder" and the like are over */
  if (!m->current && m->enabled) {
    if (!m->reason[0]) ei__fmt(m->reason, sizeof m->reason, "no version folder (%s/<version>/model.onnx)", m->name);
    int listed = 0;
    for (int i = 0; i < m->nfailed; i++) listed |= !m->failed[i].version[0];
    if (!listed && !nv) ei__repo_set_failed(m, "", m->reason);
  }
  pthread_mutex_unlock(&m->vmu);
  pthread_mutex_lock(&m->vmu);
  for (int i = 0; i < nd; i++)
    if (atomic_load(&drop[i]->refs) > 1 && m->nretiring < EI__CFG_MAX_SPECIFIC) {
      atomic_store(&drop[i]->in_retiring, 1);
      m->retiring[m->nretiring++] = drop[i];
    }
  pthread_mutex_unlock(&m->vmu);
  for (int i = 0; i < nd; i++) {
    int still = is_loaded(nl, nn, drop[i]->number) >= 0;
    if (!still)
      ei__log_msg("model '%s' version %s: unloaded (freed when its last request ends)", m->name, drop[i]->name);
    ei__version_unref(drop[i]);
  }
  free(ncfg);
  return wait_ms;
}

/* ---- control requests ---- */

static void ctl_finish(ei__server *s, ei__ctl *c) {
  pthread_mutex_lock(&s->done_mu);
  c->next = NULL;
  if (s->ctl_tail) s->ctl_tail->next = c;
  else s->ctl_head = c;
  s->ctl_tail = c;
  uv_async_send(s->async);
  pthread_mutex_unlock(&s->done_mu);
}

static void do_ctl(ei__server *s, ei__loader *L, ei__ctl *c) {
  ei__model *m = c->m;
  c->code = EI_SRV_OK;
  c->msg[0] = 0;
  if (c->load) {
    m->enabled = 1;
    m->force = 1;
    pthread_mutex_lock(&m->vmu);
    ei__repo_clear_failed(m, "");
    pthread_mutex_unlock(&m->vmu);
    reconcile(s, L, m, c);
    pthread_mutex_lock(&m->vmu);
    if (!m->current && c->code == EI_SRV_OK) {
      c->code = EI_SRV_INVALID;
      ei__fmt(c->msg, sizeof c->msg, "failed to load model '%s': %s", m->name,
               m->load_error[0] ? m->load_error : "no version folder (<model>/<version>/model.onnx)");
    }
    if (!m->current) {
      if (!m->reason[0]) ei__fmt(m->reason, sizeof m->reason, "%s", c->msg);
    } else if (c->code != EI_SRV_OK) {
      c->code = EI_SRV_OK; /* an older version loaded: Triton answers success when the model is ready */
      c->msg[0] = 0;
    }
    pthread_mutex_unlock(&m->vmu);
  } else {
    m->enabled = 0;
    reconcile(s, L, m, c);
    pthread_mutex_lock(&m->vmu);
    m->nfailed = 0; /* unloaded: the versions' failures go with it */
    ei__repo_set_failed(m, "", "unloaded");
    ei__fmt(m->reason, sizeof m->reason, "unloaded");
    pthread_mutex_unlock(&m->vmu);
    c->code = EI_SRV_OK;
  }
  ctl_finish(s, c);
}

ei__srv_code ei__srv_model_control(ei__server *s, const char *name, int load, ei__srv_control_cb cb, void *ud,
                                   char *err, size_t errlen) {
  ei__model *m = ei__repo_find(s, name);
  if (!m) {
    ei__fmt(err, errlen, "model '%s' is not in the repository", name ? name : "");
    return EI_SRV_NOT_FOUND;
  }
  if (s->opt.model_control != EI_SRV_CONTROL_EXPLICIT || !s->loader) {
    ei__fmt(err, errlen, "cannot %s model '%s': model load/unload requests need --model-control explicit (the "
             "server runs with --model-control %s)", load ? "load" : "unload", name,
             s->opt.model_control == EI_SRV_CONTROL_POLL ? "poll: copy or rename version folders instead" : "none");
    return EI_SRV_UNIMPLEMENTED;
  }
  if (atomic_load(&s->draining)) {
    ei__fmt(err, errlen, "the server is shutting down");
    return EI_SRV_UNAVAILABLE;
  }
  ei__ctl *c = calloc(1, sizeof *c);
  if (!c) {
    ei__fmt(err, errlen, "out of memory");
    return EI_SRV_INTERNAL;
  }
  c->m = m;
  c->load = load;
  c->cb = cb;
  c->ud = ud;
  s->inflight++; /* a drain waits for it */
  uv_ref((uv_handle_t *)s->async);
  s->async_refd = 1;
  ei__loader *L = s->loader;
  pthread_mutex_lock(&L->mu);
  if (L->qtail) L->qtail->next = c;
  else L->qhead = c;
  L->qtail = c;
  pthread_mutex_unlock(&L->mu);
  uint64_t one = 1;
  if (write(L->efd, &one, sizeof one) < 0) { /* the counter is far from overflow: cannot fail */
  }
  return EI_SRV_OK;
}

int ei__ctl_process(ei__server *s) {
  pthread_mutex_lock(&s->done_mu);
  ei__ctl *c = s->ctl_head;
  s->ctl_head = s->ctl_tail = NULL;
  pthread_mutex_unlock(&s->done_mu);
  int n = 0;
  while (c) {
    ei__ctl *next = c->next;
    if (c->cb) c->cb(c->ud, c->code, c->msg);
    s->inflight--;
    free(c);
    c = next;
    n++;
  }
  return n;
}

/* ---- the thread ---- */

static void handle_events(ei__loader *L, char *buf, ssize_t len) {
  for (char *p = buf; p < buf + len;) {
    struct inotify_event *ev = (struct inotify_event *)p;
    p += sizeof *ev + ev->len;
    if (ev->mask & IN_Q_OVERFLOW) {
      /* events were lost: rescan everything */
      for (int i = 0; i < L->nw; i++)
        if (L->w[i].m) L->w[i].m->dirty = 1;
      continue;
    }
    ei__watch *w = watch_find(L, ev->wd);
    if (!w) continue;
    ei__model *m = w->m;
    if (ev->mask & IN_IGNORED) {
      if (m) m->dirty = 1;
      watch_forget(L, ev->wd);
      continue;
    }
    if (!m) continue;
    const char *name = ev->len ? ev->name : "";
    if (w->number == -1) { /* the model folder */
      if (!strcmp(name, "config.json")) m->cfg_dirty = 1;
      if ((ev->mask & IN_MOVED_TO) && (ev->mask & IN_ISDIR) && ei__repo_all_digits(name)) {
        ei__vtrack *t = track(m, strtoll(name, NULL, 10), 1);
        if (t) {
          t->renamed = 1;
          t->sig = 0; /* the scan takes its signature; renamed makes it eligible at once */
        }
      }
      m->dirty = 1;
    } else { /* a version folder */
      ei__vtrack *t = track(m, w->number, 0);
      if (t && (ev->mask & IN_MOVED_TO)) {
        int loaded = 0;
        pthread_mutex_lock(&m->vmu);
        for (int i = 0; i < m->nversions; i++) loaded |= m->versions[i]->number == w->number;
        pthread_mutex_unlock(&m->vmu);
        if (loaded) t->reload = 1;
        else t->renamed = 1; /* a file renamed into a pending folder completes it */
      }
      m->dirty = 1;
    }
  }
}

static void *loader_main(void *arg) {
  ei__server *s = arg;
  ei__loader *L = s->loader;
  /* lower priority: nice 10 (about a tenth of a busy core's time: loads go on while serving saturates the CPU);
   * with --loader-priority idle also SCHED_IDLE (only otherwise idle CPU time: serving latency untouched, but a
   * saturated server may take many seconds per load) */
  setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
  struct sched_param sp = {0};
  if (s->opt.loader_idle && sched_setscheduler(0, SCHED_IDLE, &sp) != 0)
    ei__log_msg("the loader thread runs at nice 10 (SCHED_IDLE refused: %s)", strerror(errno));
  uint64_t next_rescan = mono_ns() + (uint64_t)(s->opt.poll_secs > 0 ? s->opt.poll_secs : 10) * 1000000000ull;
  int wait_ms = -1;
  char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
  for (;;) {
    int timeout = -1;
    int polling = s->opt.model_control == EI_SRV_CONTROL_POLL;
    if (polling) {
      uint64_t now = mono_ns();
      timeout = next_rescan > now ? (int)((next_rescan - now) / 1000000) + 1 : 0;
      if (wait_ms >= 0 && wait_ms < timeout) timeout = wait_ms;
    }
    struct pollfd pf[2] = {{L->efd, POLLIN, 0}, {L->ifd, POLLIN, 0}};
    int np = L->ifd >= 0 ? 2 : 1;
    int rc = poll(pf, (nfds_t)np, timeout);
    if (rc < 0 && errno != EINTR) ei__sleep_ms(100);
    if (rc > 0 && (pf[0].revents & POLLIN)) {
      uint64_t v;
      if (read(L->efd, &v, sizeof v) < 0) {
      }
    }
    if (rc > 0 && np == 2 && (pf[1].revents & POLLIN)) {
      ssize_t n = read(L->ifd, buf, sizeof buf);
      if (n > 0) handle_events(L, buf, n);
    }
    pthread_mutex_lock(&L->mu);
    int stop = L->stop;
    ei__ctl *q = L->qhead;
    L->qhead = L->qtail = NULL;
    pthread_mutex_unlock(&L->mu);
    if (stop) {
      while (q) { /* refused: the server is stopping */
        ei__ctl *next = q->next;
        q->code = EI_SRV_UNAVAILABLE;
        ei__fmt(q->msg, sizeof q->msg, "the server is shutting down");
        ctl_finish(s, q);
        q = next;
      }
      break;
    }
    while (q) {
      ei__ctl *next = q->next;
      do_ctl(s, L, q);
      q = next;
    }
    if (!polling || atomic_load(&s->draining)) continue;
    uint64_t now = mono_ns();
    int all = now >= next_rescan || wait_ms == 0 || (wait_ms > 0 && rc == 0);
    if (now >= next_rescan)
      next_rescan = now + (uint64_t)(s->opt.poll_secs > 0 ? s->opt.poll_secs : 10) * 1000000000ull;
    wait_ms = -1;
    for (int i = 0; i < s->nmodels; i++) {
      ei__model *m = s->models[i];
      if (all || m->dirty || m->cfg_dirty) {
        int w = reconcile(s, L, m, NULL);
        if (w >= 0 && (wait_ms < 0 || w < wait_ms)) wait_ms = w;
      }
      pthread_mutex_lock(&L->mu);
      int st = L->stop;
      pthread_mutex_unlock(&L->mu);
      if (st) break;
    }
  }
  return NULL;
}

ei_status ei__loader_start(ei__server *s, char *err, size_t errlen) {
  if (s->opt.model_control == EI_SRV_CONTROL_NONE) return EI_OK;
  ei__loader *L = calloc(1, sizeof *L);
  if (!L) {
    ei__fmt(err, errlen, "out of memory");
    return EI_E_NOMEM;
  }
  pthread_mutex_init(&L->mu, NULL);
  L->ifd = -1;
  L->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (L->efd < 0) {
    ei__fmt(err, errlen, "eventfd: %s", strerror(errno));
    goto err;
  }
  s->loader = L;
  if (s->opt.model_control == EI_SRV_CONTROL_POLL) {
    L->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (L->ifd < 0) ei__log_msg("inotify unavailable (%s): polling every %d s only", strerror(errno), s->opt.poll_secs);
    uint32_t mask = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR;
    if (L->ifd >= 0) {
      int wd = inotify_add_watch(L->ifd, s->opt.repo_dir, mask);
      if (wd >= 0) {
        if (L->nw == L->capw) {
          L->w = calloc(64, sizeof *L->w);
          L->capw = L->w ? 64 : 0;
        }
        if (L->w) L->w[L->nw++] = (ei__watch){wd, NULL, -2};
      }
    }
    if (L->ifd < 0) L->ifd = -1;
    /* the folders present at start are taken as they are (loaded or failed at start) */
    for (int i = 0; i < s->nmodels; i++) {
      ei__model *m = s->models[i];
      int64_t vs[1024];
      watch_add(L, m->dir, m, -1);
      int nv = scan(L, m, vs, 1024, 0);
      for (int k = 0; k < m->ntracks; k++) {
        ei__vtrack *t = &m->tracks[k];
        char vn[32];
        ei__fmt(vn, sizeof vn, "%lld", (long long)t->number);
        t->since_ns = 0;
        for (int f = 0; f < m->nfailed; f++)
          if (!strcmp(m->failed[f].version, vn)) t->failed = 1, t->failed_sig = t->sig;
      }
      (void)nv;
    }
  }
  int rc = pthread_create(&L->th, NULL, loader_main, s);
  if (rc) {
    ei__fmt(err, errlen, "cannot start the loader thread: %s", strerror(rc));
    s->loader = NULL;
    goto err;
  }
  L->started = 1;
  return EI_OK;
err:
  if (L->efd >= 0) close(L->efd);
  if (L->ifd >= 0) close(L->ifd);
  free(L->w);
  pthread_mutex_destroy(&L->mu);
  free(L);
  s->loader = NULL;
  return EI_E_INTERNAL;
}

void ei__loader_stop(ei__server *s) {
  ei__loader *L = s->loader;
  if (!L) return;
  pthread_mutex_lock(&L->mu);
  L->stop = 1;
  pthread_mutex_unlock(&L->mu);
  uint64_t one = 1;
  if (write(L->efd, &one, sizeof one) < 0) {
  }
  if (L->started) pthread_join(L->th, NULL);
  close(L->efd);
  if (L->ifd >= 0) close(L->ifd);
  free(L->w);
  pthread_mutex_destroy(&L->mu);
  free(L);
  s->loader = NULL;
}
