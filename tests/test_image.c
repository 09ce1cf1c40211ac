/* Tests of the image and tensor-file API: ei_image_decode/load, ei_image_to_chw, .npy load/save.
 *
 *   test_image [FIXTURE_DIR]
 *
 * FIXTURE_DIR is filled by tests/fixtures/make_images.py (test images + expected pixels + numpy-written .npy)
 * and tests/fixtures/make_reference.py (torchvision preprocessing references); the tests that need a missing
 * fixture are skipped. The scikit-image sample photos are used when installed. Prints "N passed, M failed"
 * and exits non-zero on any failure.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>

#include "edgeinfer.h"

#define SKIMAGE "/usr/lib/python3/dist-packages/skimage/data/"

static int g_pass, g_fail, g_skip;
static const char *g_fixdir;
static char g_tmpdir[64];

#define CHECK(cond, ...)                                      \
  do {                                                        \
    if (cond) {                                               \
      g_pass++;                                               \
    } else {                                                  \
      g_fail++;                                               \
      printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      printf(__VA_ARGS__);                                    \
      printf("\n");                                           \
    }                                                         \
  } while (0)

static void skip(const char *what) {
  g_skip++;
  printf("SKIP %s\n", what);
}

/* ---- a counting allocator: leak checks, largest block, injected failures ---------------------------- */

static long g_live;           /* blocks allocated and not freed */
static size_t g_largest;      /* largest single request since the last reset */
static long g_fail_countdown; /* > 0: the n-th allocation from now fails */

static void *count_alloc(void *ud, size_t size, size_t align) {
  (void)ud;
  if (size > g_largest) g_largest = size;
  if (g_fail_countdown > 0 && --g_fail_countdown == 0) return NULL;
  void *p = NULL;
  if (posix_memalign(&p, align, size ? size : 1)) return NULL;
  g_live++;
  return p;
}

static void count_free(void *ud, void *p) {
  (void)ud;
  g_live--;
  free(p);
}

/* ---- helpers ------------------------------------------------------------------------------------------ */

static uint8_t *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *size = (size_t)n;
  return b;
}

static int write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  int ok = fwrite(data, 1, n, f) == n;
  return fclose(f) == 0 && ok;
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static const char *fixture(const char *name) {
  static char buf[4][1024];
  static int slot;
  if (!g_fixdir) return NULL;
  char *b = buf[slot++ & 3];
  snprintf(b, sizeof buf[0], "%s/%s", g_fixdir, name);
  return exists(b) ? b : NULL;
}

static const char *tmp_path(const char *name) {
  static char buf[4][512];
  static int slot;
  char *b = buf[slot++ & 3];
  snprintf(b, sizeof buf[0], "%s/%.300s", g_tmpdir, name);
  return b;
}

/* Loads an H x W x 3 uint8 .npy as an image (pixels owned by the tensor). */
static int npy_as_image(const char *path, ei_tensor *t, ei_image *img) {
  char err[256] = "";
  if (ei_tensor_load(path, t, err, sizeof err) != EI_OK) {
    printf("cannot load %s: %s\n", path, err);
    return 0;
  }
  if (t->dtype != EI_UINT8 || t->rank != 3 || t->dims[2] != 3) {
    printf("%s is not an HxWx3 uint8 array\n", path);
    ei_tensor_free(t);
    return 0;
  }
  img->height = (int)t->dims[0];
  img->width = (int)t->dims[1];
  img->rgb = t->data;
  return 1;
}

static int max_diff_u8(const uint8_t *a, const uint8_t *b, size_t n) {
  int m = 0;
  for (size_t i = 0; i < n; i++) {
    int d = abs((int)a[i] - (int)b[i]);
    if (d > m) m = d;
  }
  return m;
}

/* Compares a decoded image with the expected pixels in expect_npy; returns the max abs difference or -1. */
static int compare_with_npy(const ei_image *img, const char *expect_npy) {
  ei_tensor t;
  ei_image ref;
  if (!npy_as_image(expect_npy, &t, &ref)) return -1;
  int d = -1;
  if (ref.width == img->width && ref.height == img->height)
    d = max_diff_u8(img->rgb, ref.rgb, (size_t)img->width * img->height * 3);
  else
    printf("size %dx%d, expected %dx%d (%s)\n", img->width, img->height, ref.width, ref.height, expect_npy);
  ei_tensor_free(&t);
  return d;
}

static int has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && strcmp(s + n - m, suf) == 0;
}

static uint32_t crc32_bytes(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
  }
  return c ^ 0xffffffffu;
}

static size_t put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
  return 4;
}

/* Appends a PNG chunk at p; returns its size. */
static size_t put_chunk(uint8_t *p, const char *tag, const uint8_t *data, uint32_t n) {
  size_t o = put_be32(p, n);
  memcpy(p + o, tag, 4);
  if (n) memcpy(p + o + 4, data, n);
  o += 4 + n;
  o += put_be32(p + o, crc32_bytes(p + 4, 4 + n));
  return o;
}

static size_t make_png_header(uint8_t *buf, uint32_t w, uint32_t h, int depth, int color) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  uint8_t ihdr[13];
  put_be32(ihdr, w);
  put_be32(ihdr + 4, h);
  ihdr[8] = (uint8_t)depth, ihdr[9] = (uint8_t)color, ihdr[10] = ihdr[11] = ihdr[12] = 0;
  memcpy(buf, sig, 8);
  size_t n = 8 + put_chunk(buf + 8, "IHDR", ihdr, 13);
  static const uint8_t idat[] = {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01};
  n += put_chunk(buf + n, "IDAT", idat, sizeof idat);
  n += put_chunk(buf + n, "IEND", NULL, 0);
  return n;
}

/* ---- decoding: format detection, garbage ---------------------------------------------------------------- */

static void test_not_an_image(void) {
  char err[256] = "";
  ei_image img;
  static const uint8_t garbage[] = "this is certainly not an image file, just some text";
  ei_status s = ei_image_decode(garbage, sizeof garbage, 0, &img, err, sizeof err);
  CHECK(s == EI_E_UNSUPPORTED && strcmp(err, "not a JPEG or PNG image") == 0, "status %d, '%s'", s, err);
  CHECK(img.rgb == NULL && img.width == 0, "output not cleared");
  s = ei_image_decode(NULL, 0, 0, &img, err, sizeof err);
  CHECK(s == EI_E_UNSUPPORTED, "empty input: status %d '%s'", s, err);
  static const uint8_t jpeg_junk[] = {0xff, 0xd8, 0xff, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  s = ei_image_decode(jpeg_junk, sizeof jpeg_junk, 0, &img, err, sizeof err);
  CHECK(s != EI_OK && img.rgb == NULL, "JPEG magic + junk: status %d '%s'", s, err);
  uint8_t png[256];
  size_t n = make_png_header(png, 4, 4, 8, 2);
  png[20] ^= 0x40; /* corrupt the IHDR -> CRC error */
  s = ei_image_decode(png, n, 0, &img, err, sizeof err);
  CHECK(s == EI_E_INVALID_ARGUMENT && strstr(err, "PNG"), "PNG with a bad CRC: status %d '%s'", s, err);
  s = ei_image_decode(png, 8, 0, &img, err, sizeof err);
  CHECK(s == EI_E_INVALID_ARGUMENT && strstr(err, "truncated PNG"), "PNG signature only: status %d '%s'", s, err);
  s = ei_image_load("/nonexistent/image.png", 0, &img, err, sizeof err);
  CHECK(s == EI_E_IO && strstr(err, "/nonexistent/image.png"), "missing file: status %d '%s'", s, err);
  s = ei_image_load("/tmp", 0, &img, err, sizeof err);
  CHECK(s == EI_E_IO, "directory: status %d '%s'", s, err);
  CHECK(write_file(tmp_path("garbage.bin"), garbage, sizeof garbage), "cannot write a temp file");
  s = ei_image_load(tmp_path("garbage.bin"), 0, &img, err, sizeof err);
  CHECK(s == EI_E_UNSUPPORTED && strstr(err, "not a JPEG or PNG image"), "garbage file: status %d '%s'", s, err);
}

/* ---- decoding: size caps ---------------------------------------------------------------------------- */

static void test_huge_png(void) {
  char err[256] = "";
  ei_image img;
  uint8_t png[256];
  static const int colors[][2] = {{8, 2}, {16, 6}, {1, 0}, {8, 4}};
  for (int i = 0; i < 4; i++) {
    size_t n = make_png_header(png, 100000, 100000, colors[i][0], colors[i][1]);
    g_largest = 0;
    ei_status s = ei_image_decode(png, n, 0, &img, err, sizeof err);
    CHECK(s == EI_E_LIMIT && strstr(err, "PNG too large: 100000x100000 pixels exceeds the cap of"),
          "status %d '%s'", s, err);
    CHECK(g_largest < (1u << 20), "a %zu-byte block was allocated before refusing", g_largest);
  }
  size_t n = make_png_header(png, 1000, 1000, 8, 2);
  ei_status s = ei_image_decode(png, n, 999999, &img, err, sizeof err);
  CHECK(s == EI_E_LIMIT && strstr(err, "1000x1000"), "max_pixels 999999: status %d '%s'", s, err);
  s = ei_image_decode(png, n, 1000000, &img, err, sizeof err);
  CHECK(s == EI_E_INVALID_ARGUMENT, "1000x1000 with one row of data: status %d '%s'", s, err);
}

/* Patches the SOFn frame size of a JPEG in place; returns 0 if there is no SOF marker. */
static int patch_jpeg_size(uint8_t *b, size_t n, unsigned w, unsigned h) {
  size_t i = 2;
  while (i + 9 < n && b[i] == 0xff) {
    int m = b[i + 1];
    size_t len = (size_t)b[i + 2] << 8 | b[i + 3];
    if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
      b[i + 5] = (uint8_t)(h >> 8), b[i + 6] = (uint8_t)h, b[i + 7] = (uint8_t)(w >> 8), b[i + 8] = (uint8_t)w;
      return 1;
    }
    i += 2 + len;
  }
  return 0;
}

static void test_huge_jpeg(void) {
  const char *paths[] = {fixture("jpeg_baseline.jpg"), fixture("jpeg_progressive.jpg"), SKIMAGE "rocket.jpg"};
  for (int i = 0; i < 3; i++) {
    if (!paths[i] || !exists(paths[i])) {
      skip("huge JPEG test: no source JPEG");
      continue;
    }
    size_t n;
    uint8_t *b = read_file(paths[i], &n);
    CHECK(b && patch_jpeg_size(b, n, 60000, 60000), "no SOF marker in %s", paths[i]);
    if (!b) continue;
    char err[256] = "";
    ei_image img;
    g_largest = 0;
    ei_status s = ei_image_decode(b, n, 0, &img, err, sizeof err);
    CHECK(s == EI_E_LIMIT && strstr(err, "JPEG too large: 60000x60000 pixels exceeds the cap of"),
          "%s: status %d '%s'", paths[i], s, err);
    CHECK(g_largest < (1u << 20), "a %zu-byte block was allocated before refusing", g_largest);
    free(b);
  }
}

static void test_max_pixels(void) {
  const char *path = fixture("rgb8.png");
  if (!path) return skip("max_pixels test: no fixtures");
  char err[256] = "";
  ei_image img;
  ei_status s = ei_image_load(path, 37 * 29, &img, err, sizeof err);
  CHECK(s == EI_OK && img.width == 37 && img.height == 29, "exact cap: status %d '%s'", s, err);
  ei_image_free(&img);
  CHECK(img.rgb == NULL && img.width == 0, "ei_image_free does not clear");
  s = ei_image_load(path, 37 * 29 - 1, &img, err, sizeof err);
  CHECK(s == EI_E_LIMIT && strstr(err, "37x29") && strstr(err, "1072"), "cap - 1: status %d '%s'", s, err);
  path = fixture("jpeg_baseline.jpg");
  if (!path) return;
  s = ei_image_load(path, 91 * 67 - 1, &img, err, sizeof err);
  CHECK(s == EI_E_LIMIT && strstr(err, "JPEG too large: 91x67"), "JPEG cap - 1: status %d '%s'", s, err);
}

/* ---- decoding: real photos and generated fixtures ----------------------------------------------------- */

static void test_photos(void) {
  static const struct {
    const char *file, *ref;
    int w, h;
  } photos[] = {{"chelsea.png", "photo_chelsea.rgb.npy", 451, 300},
                {"coffee.png", "photo_coffee.rgb.npy", 600, 400},
                {"astronaut.png", "photo_astronaut.rgb.npy", 512, 512},
                {"rocket.jpg", "photo_rocket.rgb.npy", 640, 427}};
  for (int i = 0; i < 4; i++) {
    char path[256], err[256] = "";
    snprintf(path, sizeof path, SKIMAGE "%s", photos[i].file);
    if (!exists(path)) {
      skip(path);
      continue;
    }
    ei_image img;
    ei_status s = ei_image_load(path, 0, &img, err, sizeof err);
    CHECK(s == EI_OK && img.width == photos[i].w && img.height == photos[i].h, "%s: status %d '%s' %dx%d", path,
          s, err, img.width, img.height);
    const char *ref = fixture(photos[i].ref);
    if (s == EI_OK && ref) {
      int d = compare_with_npy(&img, ref);
      printf("  %s: %dx%d, max |decode - PIL| = %d\n", photos[i].file, img.width, img.height, d);
      CHECK(d == 0, "%s differs from PIL's decode by %d", path, d);
    }
    ei_image_free(&img);
  }
}

static void test_fixture_images(void) {
  const char *list = fixture("images.txt");
  if (!list) return skip("fixture images (run tests/fixtures/make_images.py DIR)");
  FILE *f = fopen(list, "r");
  char line[256];
  int n = 0, worst_jpeg = 0;
  while (f && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) continue;
    char ref[300], err[256] = "";
    snprintf(ref, sizeof ref, "%.*s.rgb.npy", (int)(strrchr(line, '.') - line), line);
    const char *path = fixture(line), *refpath = fixture(ref);
    CHECK(path && refpath, "missing fixture %s or %s", line, ref);
    if (!path || !refpath) continue;
    ei_image img;
    ei_status s = ei_image_load(path, 0, &img, err, sizeof err);
    CHECK(s == EI_OK, "%s: status %d '%s'", line, s, err);
    if (s != EI_OK) continue;
    int d = compare_with_npy(&img, refpath);
    if (has_suffix(line, ".jpg") && d > worst_jpeg) worst_jpeg = d;
    CHECK(d == 0, "%s: max pixel difference %d", line, d);
    ei_image_free(&img);
    n++;
  }
  if (f) fclose(f);
  printf("  %d generated PNG/JPEG fixtures decoded (grey/palette/16-bit/alpha/interlaced PNG, progressive/grey/"
         "CMYK JPEG); worst JPEG difference vs PIL %d\n", n, worst_jpeg);
}

/* Encodes w x h 4-component pixels as a CMYK or YCCK JPEG with libjpeg (PIL cannot write a non-Adobe CMYK file). */
static unsigned char *encode_cmyk_jpeg(const uint8_t *px, int w, int h, J_COLOR_SPACE cs, int adobe,
                                       unsigned long *size) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr jerr;
  unsigned char *out = NULL;
  c.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&c);
  jpeg_mem_dest(&c, &out, size);
  c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h, c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_set_colorspace(&c, cs);
  c.write_Adobe_marker = adobe ? TRUE : FALSE;
  jpeg_set_quality(&c, 100, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * 4);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  return out;
}

/* CMYK conventions: Adobe files (APP14) hold inverted CMYK, others plain CMYK; YCCK decodes to CMYK. */
static void test_cmyk_conventions(void) {
  enum { W = 24, H = 16 };
  uint8_t rgb[W * H * 3], plain[W * H * 4], inverted[W * H * 4];
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      uint8_t *p = rgb + (y * W + x) * 3;
      p[0] = (uint8_t)(x * 10), p[1] = (uint8_t)(y * 15), p[2] = (uint8_t)(128 + x * 2 - y * 3);
      uint8_t *c = plain + (y * W + x) * 4, *i = inverted + (y * W + x) * 4;
      for (int k = 0; k < 3; k++) c[k] = (uint8_t)(255 - p[k]), i[k] = p[k];
      c[3] = 0, i[3] = 255; /* no black ink */
    }
  static const struct {
    J_COLOR_SPACE cs;
    int adobe;
    const char *name;
    int tolerance; /* YCCK adds a colour transform and 2x2 chroma subsampling */
  } cases[] = {{JCS_CMYK, 1, "Adobe CMYK", 2}, {JCS_CMYK, 0, "plain CMYK", 2}, {JCS_YCCK, 1, "Adobe YCCK", 16}};
  for (int i = 0; i < 3; i++) {
    unsigned long n = 0;
    unsigned char *jpg = encode_cmyk_jpeg(cases[i].adobe ? inverted : plain, W, H, cases[i].cs, cases[i].adobe, &n);
    char err[256] = "";
    ei_image img;
    ei_status s = ei_image_decode(jpg, n, 0, &img, err, sizeof err);
    int d = s == EI_OK ? max_diff_u8(img.rgb, rgb, sizeof rgb) : -1;
    printf("  %s JPEG: max |decode - source| = %d\n", cases[i].name, d);
    CHECK(s == EI_OK && img.width == W && img.height == H && d <= cases[i].tolerance, "%s: status %d '%s', diff %d", cases[i].name, s,
          err, d);
    ei_image_free(&img);
    free(jpg);
  }
}

/* ---- decoding: truncation and corruption ------------------------------------------------------------- */

/* Every strict prefix of a valid file must fail cleanly; the first half must say "truncated". */
static void check_prefixes(const char *path, int every_byte) {
  size_t n;
  uint8_t *b = read_file(path, &n);
  if (!b) return skip(path);
  char err[256] = "";
  ei_image img;
  ei_status s = ei_image_decode(b, n / 2, 0, &img, err, sizeof err);
  CHECK(s == EI_E_INVALID_ARGUMENT && strstr(err, "truncated") && !img.rgb, "%s first half: status %d '%s'", path,
        s, err);
  int bad = 0;
  size_t step = every_byte ? 1 : n / 97 + 1;
  for (size_t len = 0; len < n; len += step) {
    uint8_t *copy = malloc(len ? len : 1); /* exact-size copy: ASan catches any over-read */
    memcpy(copy, b, len);
    s = ei_image_decode(copy, len, 0, &img, err, sizeof err);
    if (s == EI_OK) {
      if (!bad) printf("  %s: a %zu-byte prefix of %zu decoded\n", path, len, n);
      bad++;
      ei_image_free(&img);
    }
    free(copy);
  }
  CHECK(bad == 0, "%s: %d prefixes decoded without error", path, bad);
  s = ei_image_decode(b, n, 0, &img, err, sizeof err);
  CHECK(s == EI_OK, "%s (whole): status %d '%s'", path, s, err);
  ei_image_free(&img);
  free(b);
}

static void test_truncated(void) {
  static const char *photos[] = {SKIMAGE "chelsea.png", SKIMAGE "rocket.jpg"};
  for (int i = 0; i < 2; i++)
    if (exists(photos[i])) check_prefixes(photos[i], 0);
    else skip(photos[i]);
  static const char *small[] = {"rgb8.png", "pal4_trns_i.png", "rgba16_i_13x7.png", "grey1_i.png",
                                "jpeg_baseline.jpg", "jpeg_progressive.jpg", "jpeg_cmyk.jpg", "jpeg_grey.jpg"};
  for (int i = 0; i < 8; i++) {
    const char *p = fixture(small[i]);
    if (p) check_prefixes(p, 1);
    else skip(small[i]);
  }
}

/* Random byte damage must never crash (ASan/UBSan builds check memory safety); the result may be either. */
static void test_corrupt(void) {
  static const char *names[] = {"rgb8_i.png", "pal8.png", "jpeg_progressive.jpg", "jpeg_cmyk_progressive.jpg",
                                "jpeg_baseline.jpg", "grey16.png"};
  uint32_t seed = 12345;
  int runs = 0, decoded = 0;
  for (int i = 0; i < 6; i++) {
    const char *p = fixture(names[i]);
    size_t n;
    uint8_t *b = p ? read_file(p, &n) : NULL;
    if (!b) continue;
    for (int k = 0; k < 150; k++) {
      uint8_t *copy = malloc(n);
      memcpy(copy, b, n);
      int flips = 1 + k % 4;
      for (int j = 0; j < flips; j++) {
        seed = seed * 1664525u + 1013904223u;
        size_t at = 8 + (seed >> 8) % (n - 8);
        copy[at] ^= (uint8_t)(1u << (seed & 7));
      }
      char err[256] = "";
      ei_image img;
      ei_status s = ei_image_decode(copy, n, 1u << 22, &img, err, sizeof err);
      runs++;
      if (s == EI_OK) {
        decoded++;
        ei_image_free(&img);
      } else if (!err[0]) {
        CHECK(0, "%s: corrupt file gave status %d with no message", names[i], s);
      }
      free(copy);
    }
    free(b);
  }
  if (runs) printf("  %d damaged files: %d decoded, %d refused, no crash\n", runs, decoded, runs - decoded);
  else skip("corruption test: no fixtures");
}

/* Allocation failures at every point must give EI_E_NOMEM (or another error), never a crash or a leak. */
static void test_alloc_failures(void) {
  const char *paths[] = {fixture("rgb16_i.png"), fixture("jpeg_cmyk.jpg")};
  for (int i = 0; i < 2; i++) {
    if (!paths[i]) continue;
    size_t n;
    uint8_t *b = read_file(paths[i], &n);
    int nomem = 0;
    for (long k = 1; k < 200; k++) {
      char err[256] = "";
      ei_image img;
      long live = g_live;
      g_fail_countdown = k;
      ei_status s = ei_image_decode(b, n, 0, &img, err, sizeof err);
      int fired = g_fail_countdown == 0;
      g_fail_countdown = 0;
      if (s == EI_OK) {
        ei_image_free(&img);
        CHECK(!fired, "%s: success although allocation %ld failed", paths[i], k);
        break;
      }
      CHECK(s == EI_E_NOMEM, "%s: allocation %ld failed -> status %d '%s'", paths[i], k, s, err);
      CHECK(g_live == live, "%s: %ld blocks leaked when allocation %ld failed", paths[i], g_live - live, k);
      nomem++;
    }
    CHECK(nomem > 0, "%s: no allocation failure was injected", paths[i]);
    free(b);
  }
}

/* ---- preprocessing ----------------------------------------------------------------------------------- */

static void test_preprocess_basics(void) {
  ei_preprocess p;
  ei_preprocess_init(&p);
  CHECK(p.resize == 256 && p.crop_w == 224 && p.crop_h == 224 && p.channels == 3, "defaults");
  CHECK(fabsf(p.scale - 1.0f / 255) < 1e-9f && p.mean[1] == 0.456f && p.std[2] == 0.225f, "default values");
  int w, h;
  ei_preprocess_out_size(&p, 451, 300, &w, &h);
  CHECK(w == 224 && h == 224, "out size %dx%d", w, h);
  p.crop_w = p.crop_h = 0;
  ei_preprocess_out_size(&p, 451, 300, &w, &h);
  CHECK(w == 384 && h == 256, "resize only: %dx%d (want 384x256 = int(256 * 451 / 300))", w, h);
  ei_preprocess_out_size(&p, 300, 451, &w, &h);
  CHECK(w == 256 && h == 384, "portrait: %dx%d", w, h);
  p.resize = 0;
  ei_preprocess_out_size(&p, 451, 300, &w, &h);
  CHECK(w == 451 && h == 300, "no resize, no crop: %dx%d", w, h);

  /* Identity: no resize, no crop, scale 1, mean 0, std 1 -> the pixels, planar. */
  uint8_t px[4 * 3 * 3];
  for (int i = 0; i < 36; i++) px[i] = (uint8_t)(i * 7);
  ei_image img = {4, 3, px};
  ei_preprocess id = {0, 0, 0, 3, 1.0f, {0, 0, 0}, {1, 1, 1}};
  float out[36];
  char err[256] = "";
  ei_status s = ei_image_to_chw(&img, &id, out, 36, err, sizeof err);
  int ok = s == EI_OK;
  for (int c = 0; c < 3 && ok; c++)
    for (int i = 0; i < 12; i++) ok &= out[c * 12 + i] == (float)px[i * 3 + c];
  CHECK(ok, "identity preprocessing: status %d '%s'", s, err);
  /* Resizing to the same size is the identity too. */
  id.resize = 3;
  s = ei_image_to_chw(&img, &id, out, 36, err, sizeof err);
  ok = s == EI_OK;
  for (int c = 0; c < 3 && ok; c++)
    for (int i = 0; i < 12; i++) ok &= out[c * 12 + i] == (float)px[i * 3 + c];
  CHECK(ok, "resize to the same size: status %d '%s'", s, err);

  /* Grey: luma. */
  id.resize = 0;
  id.channels = 1;
  s = ei_image_to_chw(&img, &id, out, 12, err, sizeof err);
  CHECK(s == EI_OK && fabsf(out[5] - (0.299f * px[15] + 0.587f * px[16] + 0.114f * px[17])) < 1e-3f,
        "grey: status %d, %f", s, (double)out[5]);

  /* Errors. */
  ei_preprocess d;
  ei_preprocess_init(&d);
  float big[3 * 224 * 224];
  s = ei_image_to_chw(&img, &d, big, 3 * 224 * 224, err, sizeof err);
  CHECK(s == EI_OK, "4x3 resized to 341x256 then cropped: status %d '%s'", s, err);
  d.resize = 200;
  s = ei_image_to_chw(&img, &d, big, 3 * 224 * 224, err, sizeof err);
  CHECK(s == EI_E_INVALID_ARGUMENT && strstr(err, "crop 224x224 is larger than the resized image 266x200"),
        "crop too large: status %d '%s'", s, err);
  d.resize = 256;
  s = ei_image_to_chw(&img, &d, big, 3 * 224 * 224 - 1, err, sizeof err);
  CHECK(s == EI_E_INVALID_ARGUMENT && strstr(err, "150528"), "small output: status %d '%s'", s, err);
  d.channels = 2;
  s = ei_image_to_chw(&img, &d, big, 3 * 224 * 224, err, sizeof err);
  CHECK(s == EI_E_INVALID_ARGUMENT && strstr(err, "channels"), "channels 2: status %d '%s'", s, err);
  d.channels = 3;
  d.std[1] = 0;
  s = ei_image_to_chw(&img, &d, big, 3 * 224 * 224, err, sizeof err);
  CHECK(s == EI_E_INVALID_ARGUMENT && strstr(err, "std"), "std 0: status %d '%s'", s, err);
  ei_preprocess_init(&d);
  d.crop_w = -1;
  s = ei_image_to_chw(&img, &d, big, 3 * 224 * 224, err, sizeof err);
  CHECK(s == EI_E_INVALID_ARGUMENT, "negative crop: status %d '%s'", s, err);
  ei_preprocess_init(&d);
  ei_image empty = {0, 3, px};
  s = ei_image_to_chw(&empty, &d, big, 3 * 224 * 224, err, sizeof err);
  CHECK(s == EI_E_INVALID_ARGUMENT, "zero width: status %d '%s'", s, err);
  ei_image thin = {1, 100000, px}; /* 1 x 100000 -> 256 x 25600000: a bounded window still works */
  uint8_t *tall = calloc(100000, 3);
  thin.rgb = tall;
  s = ei_image_to_chw(&thin, &d, big, 3 * 224 * 224, err, sizeof err);
  CHECK(s == EI_OK, "very tall image: status %d '%s'", s, err);
  free(tall);
}

/* Center-crop offsets follow Python's round-half-to-even. The image's red channel is the column index. */
static void test_crop_rounding(void) {
  static const int widths[][2] = {{35, 16}, {37, 18}, {3, 0}, {5, 2}, {36, 17}};
  for (int i = 0; i < 5; i++) {
    int w = widths[i][0];
    uint8_t *px = calloc((size_t)w * 3, 1);
    for (int x = 0; x < w; x++) px[x * 3] = (uint8_t)x;
    ei_image img = {w, 1, px};
    ei_preprocess p = {0, 2, 1, 3, 1.0f, {0, 0, 0}, {1, 1, 1}};
    float out[6];
    char err[256] = "";
    ei_status s = ei_image_to_chw(&img, &p, out, 6, err, sizeof err);
    CHECK(s == EI_OK && out[0] == (float)widths[i][1], "width %d crop 2: left %g, want %d (%s)", w, (double)out[0],
          widths[i][1], err);
    free(px);
  }
}

static void compare_case(const char *name, const char *input, int resize, int crop_w, int crop_h, int channels) {
  char ref_name[64], in_name[64];
  snprintf(ref_name, sizeof ref_name, "pre_%s.npy", name);
  snprintf(in_name, sizeof in_name, "pre_%s.rgb.npy", input);
  const char *refp = fixture(ref_name), *inp = fixture(in_name);
  if (!refp || !inp) return skip(ref_name);
  ei_tensor ref, in;
  ei_image img;
  char err[256] = "";
  if (!npy_as_image(inp, &in, &img)) {
    CHECK(0, "cannot read %s", inp);
    return;
  }
  ei_status s = ei_tensor_load(refp, &ref, err, sizeof err);
  CHECK(s == EI_OK && ref.dtype == EI_FLOAT && ref.rank == 3, "%s: status %d '%s'", refp, s, err);
  if (s == EI_OK) {
    ei_preprocess p;
    ei_preprocess_init(&p);
    p.resize = resize, p.crop_w = crop_w, p.crop_h = crop_h, p.channels = channels;
    int ow, oh;
    ei_preprocess_out_size(&p, img.width, img.height, &ow, &oh);
    CHECK(ref.dims[0] == channels && ref.dims[1] == oh && ref.dims[2] == ow, "%s: out size %dx%d, reference %lldx%lld",
          name, ow, oh, (long long)ref.dims[2], (long long)ref.dims[1]);
    size_t nf = (size_t)ei_tensor_numel(&ref);
    float *out = malloc(nf * sizeof(float));
    s = ei_image_to_chw(&img, &p, out, nf, err, sizeof err);
    CHECK(s == EI_OK, "%s: status %d '%s'", name, s, err);
    double maxd = 0;
    const float *r = ref.data;
    for (size_t i = 0; s == EI_OK && i < nf; i++) maxd = fmax(maxd, fabs((double)out[i] - r[i]));
    printf("  preprocess %-9s %4dx%-4d resize %3d crop %3dx%-3d ch %d: max |C - torchvision| = %.3g\n", name,
           img.width, img.height, resize, crop_w, crop_h, channels, maxd);
    CHECK(maxd < 1e-4, "%s: max difference %g", name, maxd);
    free(out);
    ei_tensor_free(&ref);
  }
  ei_tensor_free(&in);
}

static void test_preprocess_reference(void) {
  /* Our PNG decode of chelsea must give the very pixels the reference was computed from. */
  const char *ref = fixture("pre_chelsea.rgb.npy");
  if (ref && exists(SKIMAGE "chelsea.png")) {
    ei_image img;
    char err[256] = "";
    ei_status s = ei_image_load(SKIMAGE "chelsea.png", 0, &img, err, sizeof err);
    CHECK(s == EI_OK && compare_with_npy(&img, ref) == 0, "chelsea decode differs from the reference input");
    ei_image_free(&img);
  }
  compare_case("default", "chelsea", 256, 224, 224, 3);
  compare_case("r257", "chelsea", 257, 224, 224, 3);
  compare_case("grey", "chelsea", 256, 224, 224, 1);
  compare_case("up", "small", 256, 240, 200, 3);
  compare_case("nocrop", "small", 100, 0, 0, 3);
  compare_case("noresize", "chelsea", 0, 203, 101, 3);
}

/* ---- .npy ------------------------------------------------------------------------------------------- */

static const struct {
  ei_dtype dtype;
  const char *suffix;
} NPY_TYPES[] = {{EI_FLOAT, "f4"},  {EI_DOUBLE, "f8"}, {EI_FLOAT16, "f2"}, {EI_INT8, "i1"},  {EI_UINT8, "u1"},
                 {EI_INT16, "i2"},  {EI_UINT16, "u2"}, {EI_INT32, "i4"},   {EI_UINT32, "u4"}, {EI_INT64, "i8"},
                 {EI_UINT64, "u8"}, {EI_BOOL, "b1"}};

/* Fills t (2x3x4) with the values make_images.py writes: arange(24) - 5 (signed/float), arange(24), x%3==0. */
static void fill_numpy_pattern(ei_tensor *t, void *buf) {
  t->rank = 3, t->dims[0] = 2, t->dims[1] = 3, t->dims[2] = 4;
  t->data = buf;
  for (int i = 0; i < 24; i++) {
    int v = i - 5;
    switch (t->dtype) {
      case EI_FLOAT: ((float *)buf)[i] = (float)v; break;
      case EI_DOUBLE: ((double *)buf)[i] = v; break;
      case EI_FLOAT16: { /* small integers in binary16 */
        uint16_t h = 0;
        if (v) {
          int a = abs(v), e = 0;
          while ((a >> e) > 1) e++;
          h = (uint16_t)((v < 0 ? 0x8000 : 0) | (e + 15) << 10 | ((a << 10 >> e) & 0x3ff));
        }
        ((uint16_t *)buf)[i] = h;
        break;
      }
      case EI_INT8: ((int8_t *)buf)[i] = (int8_t)v; break;
      case EI_UINT8: ((uint8_t *)buf)[i] = (uint8_t)i; break;
      case EI_INT16: ((int16_t *)buf)[i] = (int16_t)v; break;
      case EI_UINT16: ((uint16_t *)buf)[i] = (uint16_t)i; break;
      case EI_INT32: ((int32_t *)buf)[i] = v; break;
      case EI_UINT32: ((uint32_t *)buf)[i] = (uint32_t)i; break;
      case EI_INT64: ((int64_t *)buf)[i] = v; break;
      case EI_UINT64: ((uint64_t *)buf)[i] = (uint64_t)i; break;
      case EI_BOOL: ((uint8_t *)buf)[i] = i % 3 == 0; break;
      default: break;
    }
  }
}

static int same_tensor(const ei_tensor *a, const ei_tensor *b) {
  if (a->dtype != b->dtype || a->rank != b->rank) return 0;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return 0;
  size_t n = (size_t)ei_tensor_numel(a) * ei_dtype_size(a->dtype);
  return n == 0 || memcmp(a->data, b->data, n) == 0;
}

static void test_npy_round_trip(void) {
  char err[256] = "";
  uint64_t buf[24];
  for (size_t i = 0; i < sizeof NPY_TYPES / sizeof NPY_TYPES[0]; i++) {
    ei_tensor t = {.dtype = NPY_TYPES[i].dtype};
    fill_numpy_pattern(&t, buf);
    char name[32];
    snprintf(name, sizeof name, "rt_%s.npy", NPY_TYPES[i].suffix);
    ei_status s = ei_tensor_save_npy(tmp_path(name), &t, err, sizeof err);
    CHECK(s == EI_OK, "save %s: %s", name, err);
    ei_tensor back;
    s = ei_tensor_load(tmp_path(name), &back, err, sizeof err);
    CHECK(s == EI_OK && same_tensor(&t, &back), "%s round trip: status %d '%s'", name, s, err);
    ei_tensor_free(&back);
    CHECK(back.data == NULL && back.rank == 0, "ei_tensor_free does not clear");
    /* Byte-identical to numpy's np.save of the same array, and numpy's file reads back the same. */
    char npname[32];
    snprintf(npname, sizeof npname, "npy_%s.npy", NPY_TYPES[i].suffix);
    const char *np = fixture(npname);
    if (!np) continue;
    size_t n1, n2;
    uint8_t *a = read_file(tmp_path(name), &n1), *b = read_file(np, &n2);
    CHECK(a && b && n1 == n2 && memcmp(a, b, n1) == 0, "%s is not byte-identical to numpy's %s", name, npname);
    free(a);
    free(b);
    s = ei_tensor_load(np, &back, err, sizeof err);
    CHECK(s == EI_OK && same_tensor(&t, &back), "numpy's %s: status %d '%s'", npname, s, err);
    ei_tensor_free(&back);
  }
  /* Shapes: (), (5,), (0, 3), rank 8. */
  static const struct {
    int rank;
    int64_t dims[EI_MAX_DIMS];
  } shapes[] = {{0, {0}}, {1, {5}}, {2, {0, 3}}, {8, {1, 2, 1, 1, 1, 1, 1, 3}}, {1, {0}}};
  for (int i = 0; i < 5; i++) {
    float data[6] = {1.5f, -2, 3, 4, 5, 6};
    ei_tensor t = {EI_FLOAT, shapes[i].rank, {0}, data};
    memcpy(t.dims, shapes[i].dims, sizeof t.dims);
    ei_tensor back;
    ei_status s = ei_tensor_save_npy(tmp_path("shape.npy"), &t, err, sizeof err);
    if (s == EI_OK) s = ei_tensor_load(tmp_path("shape.npy"), &back, err, sizeof err);
    CHECK(s == EI_OK && same_tensor(&t, &back), "shape %d of rank %d: status %d '%s'", i, shapes[i].rank, s, err);
    if (s == EI_OK) ei_tensor_free(&back);
  }
}

static void test_npy_numpy_files(void) {
  if (!fixture("npy_scalar.npy")) return skip("numpy-written .npy files (run make_images.py)");
  char err[256] = "";
  ei_tensor t;
  ei_status s = ei_tensor_load(fixture("npy_scalar.npy"), &t, err, sizeof err);
  CHECK(s == EI_OK && t.rank == 0 && t.dtype == EI_FLOAT && *(float *)t.data == 2.5f, "scalar: %d '%s'", s, err);
  ei_tensor_free(&t);
  s = ei_tensor_load(fixture("npy_vec5.npy"), &t, err, sizeof err);
  CHECK(s == EI_OK && t.rank == 1 && t.dims[0] == 5 && t.dtype == EI_INT64 && ((int64_t *)t.data)[4] == 4,
        "(5,): %d '%s'", s, err);
  ei_tensor_free(&t);
  s = ei_tensor_load(fixture("npy_empty.npy"), &t, err, sizeof err);
  CHECK(s == EI_OK && t.rank == 2 && t.dims[0] == 0 && t.dims[1] == 3 && ei_tensor_numel(&t) == 0, "(0, 3): %d '%s'",
        s, err);
  ei_tensor_free(&t);
  for (int v = 2; v <= 3; v++) {
    char name[32];
    snprintf(name, sizeof name, "npy_v%d.npy", v);
    s = ei_tensor_load(fixture(name), &t, err, sizeof err);
    CHECK(s == EI_OK && t.dtype == EI_FLOAT && t.rank == 3 && ((float *)t.data)[23] == 18.0f, "version %d.0: %d '%s'",
          v, s, err);
    ei_tensor_free(&t);
  }
  s = ei_tensor_load(fixture("npy_fortran.npy"), &t, err, sizeof err);
  CHECK(s == EI_E_UNSUPPORTED && strstr(err, "Fortran"), "Fortran order: %d '%s'", s, err);
  s = ei_tensor_load(fixture("npy_bigendian.npy"), &t, err, sizeof err);
  CHECK(s == EI_E_UNSUPPORTED && strstr(err, "big-endian"), "big-endian: %d '%s'", s, err);
}

/* Writes a v1.0 .npy with the given header dict (padded as numpy does) and data size. */
static const char *write_npy(const char *dict, size_t data_bytes, int major) {
  static uint8_t buf[4096];
  size_t pre = major == 1 ? 10 : 12, len = strlen(dict);
  size_t total = (pre + len + 1 + 63) / 64 * 64, hl = total - pre;
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (uint8_t)major, buf[7] = 0;
  buf[8] = (uint8_t)hl, buf[9] = (uint8_t)(hl >> 8), buf[10] = buf[11] = 0;
  memcpy(buf + pre, dict, len);
  memset(buf + pre + len, ' ', hl - len - 1);
  buf[total - 1] = '\n';
  memset(buf + total, 0, data_bytes);
  const char *path = tmp_path("hand.npy");
  write_file(path, buf, total + data_bytes);
  return path;
}

static void test_npy_bad_headers(void) {
  static const struct {
    const char *dict;
    size_t data;
    ei_status want;
    const char *msg;
  } cases[] = {
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24, EI_OK, ""},
      {"{\"shape\": (2,3), \"descr\": \"<f4\", \"fortran_order\": False}", 24, EI_OK, ""},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 23, EI_E_INVALID_ARGUMENT,
       "truncated: .npy data is 23 bytes, shape (2, 3) of float32 needs 24"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 25, EI_E_INVALID_ARGUMENT, "needs only 24"},
      {"{'descr': '<f4', 'fortran_order': False, }", 4, EI_E_INVALID_ARGUMENT, "missing 'shape'"},
      {"{'descr': '<f4', 'shape': (1,), }", 4, EI_E_INVALID_ARGUMENT, "missing 'fortran_order'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4, EI_E_INVALID_ARGUMENT,
       "duplicate"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", 4, EI_E_INVALID_ARGUMENT, "unknown key"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", 12, EI_E_INVALID_ARGUMENT, "trailing comma"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", 12, EI_E_INVALID_ARGUMENT, "non-negative"},
      {"{'descr': '<f4', 'fortran_order': false, 'shape': (3,), }", 12, EI_E_INVALID_ARGUMENT, "True or False"},
      {"{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", 24, EI_E_UNSUPPORTED, "'<c8'"},
      {"{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", 24, EI_E_UNSUPPORTED, "not supported"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4, EI_E_UNSUPPORTED, "rank"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0, EI_E_INVALID_ARGUMENT,
       "too large"},
      {"{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", 0, EI_E_LIMIT, "too large"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } x", 24, EI_E_INVALID_ARGUMENT, "after the dict"},
      {"['descr', '<f4']", 24, EI_E_INVALID_ARGUMENT, "expected '{'"},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3), }", 24, EI_E_INVALID_ARGUMENT, "expected ','"},
      {"{'descr': '<f4}", 24, EI_E_INVALID_ARGUMENT, "bad .npy header"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char err[256] = "";
    ei_tensor t;
    ei_status s = ei_tensor_load(write_npy(cases[i].dict, cases[i].data, 1 + (int)(i % 2) * 2), &t, err, sizeof err);
    CHECK(s == cases[i].want && strstr(err, cases[i].msg), "case %zu %s: status %d '%s'", i, cases[i].dict, s, err);
    if (s == EI_OK) ei_tensor_free(&t);
    CHECK(s == EI_OK || t.data == NULL, "failed load left data");
  }
  /* Bad versions, a missing newline, a truncated header. */
  const char *p = write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, 4);
  char err[256] = "";
  ei_tensor t;
  ei_status s = ei_tensor_load(p, &t, err, sizeof err);
  CHECK(s == EI_E_UNSUPPORTED && strstr(err, "version 4.0"), "version 4: status %d '%s'", s, err);
  size_t n;
  uint8_t *b = read_file(write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, 1), &n);
  size_t header_end = 10 + (size_t)(b[8] | b[9] << 8);
  b[header_end - 1] = ' ';
  write_file(tmp_path("nonl.npy"), b, n);
  s = ei_tensor_load(tmp_path("nonl.npy"), &t, err, sizeof err);
  CHECK(s == EI_E_INVALID_ARGUMENT && strstr(err, "newline"), "no newline: status %d '%s'", s, err);
  if (s == EI_OK) ei_tensor_free(&t);
  b[header_end - 1] = '\n';
  for (size_t cut = 6; cut < n; cut += 3) {
    write_file(tmp_path("cut.npy"), b, cut);
    s = ei_tensor_load(tmp_path("cut.npy"), &t, err, sizeof err);
    CHECK(s == EI_E_INVALID_ARGUMENT && strstr(err, "truncated"), "cut at %zu: status %d '%s'", cut, s, err);
  }
  free(b);
}

static void test_npy_save_errors(void) {
  char err[256] = "";
  float x = 1;
  ei_tensor t = {EI_STRING, 1, {1}, &x};
  ei_status s = ei_tensor_save_npy(tmp_path("bad.npy"), &t, err, sizeof err);
  CHECK(s == EI_E_UNSUPPORTED && strstr(err, "string"), "string tensor: status %d '%s'", s, err);
  t.dtype = EI_FLOAT;
  t.dims[0] = -1;
  s = ei_tensor_save_npy(tmp_path("bad.npy"), &t, err, sizeof err);
  CHECK(s == EI_E_INVALID_ARGUMENT && strstr(err, "negative"), "negative dim: status %d '%s'", s, err);
  t.dims[0] = 1;
  t.rank = 9;
  s = ei_tensor_save_npy(tmp_path("bad.npy"), &t, err, sizeof err);
  CHECK(s == EI_E_INVALID_ARGUMENT, "rank 9: status %d '%s'", s, err);
  t.rank = 1;
  s = ei_tensor_save_npy("/nonexistent/dir/x.npy", &t, err, sizeof err);
  CHECK(s == EI_E_IO && strstr(err, "/nonexistent/dir/x.npy"), "bad path: status %d '%s'", s, err);
  ei_tensor back;
  s = ei_tensor_load("/nonexistent/x.npy", &back, err, sizeof err);
  CHECK(s == EI_E_IO, "missing file: status %d '%s'", s, err);
  s = ei_tensor_load("/tmp", &back, err, sizeof err);
  CHECK(s == EI_E_IO, "directory: status %d '%s'", s, err);
  /* Not .npy: handed to the TensorProto reader, which must refuse it. */
  CHECK(write_file(tmp_path("text.pb"), "hello, not a tensor", 19), "cannot write a temp file");
  s = ei_tensor_load(tmp_path("text.pb"), &back, err, sizeof err);
  CHECK(s != EI_OK && err[0] && back.data == NULL, "text as .pb: status %d '%s'", s, err);
  ei_tensor_free(NULL);
  ei_image_free(NULL);
}

/* ---- main -------------------------------------------------------------------------------------------- */

static void remove_tmpdir(void) {
  DIR *d = opendir(g_tmpdir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    unlink(tmp_path(e->d_name));
  }
  if (d) closedir(d);
  rmdir(g_tmpdir);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  g_fixdir = argc > 1 ? argv[1] : NULL;
  if (!g_fixdir) printf("no fixture directory given: fixture-based tests are skipped\n");
  snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/ei_test_image_XXXXXX");
  if (!mkdtemp(g_tmpdir)) {
    perror("mkdtemp");
    return 2;
  }
  ei_allocator counting = {count_alloc, count_free, NULL};
  ei_set_allocator(&counting);

  test_not_an_image();
  test_huge_png();
  test_huge_jpeg();
  test_max_pixels();
  test_photos();
  test_fixture_images();
  test_cmyk_conventions();
  test_truncated();
  test_corrupt();
  test_alloc_failures();
  test_preprocess_basics();
  test_crop_rounding();
  test_preprocess_reference();
  test_npy_round_trip();
  test_npy_numpy_files();
  test_npy_bad_headers();
  test_npy_save_errors();

  CHECK(g_live == 0, "%ld library blocks were not freed", g_live);
  ei_set_allocator(NULL);
  remove_tmpdir();
  printf("%d passed, %d failed (%d skipped)\n", g_pass, g_fail, g_skip);
  return g_fail != 0;
}
