/* Image decoding for the public API: ei_image_decode / ei_image_load / ei_image_free.
 *
 * JPEG through libjpeg-turbo and PNG through libpng, picked by magic bytes. Every image becomes 8-bit
 * interleaved RGB: grey is replicated, palettes are expanded, 16-bit samples keep their high byte, alpha is
 * dropped (not composited), CMYK/YCCK JPEGs are converted with the Adobe (inverted) convention when the file
 * has an Adobe APP14 marker. No colour management or gamma is applied (same as PIL's convert("RGB")).
 *
 * Safety rules:
 *  - the libraries report errors by longjmp into the decoder (never exit/abort);
 *  - the width*height cap is checked right after the header is parsed, before any pixel buffer exists;
 *  - a truncated file is an error: libjpeg's "premature end of data" warnings are promoted to errors, and
 *    the PNG read callback fails on short data;
 *  - our buffers come from ei__malloc/ei__free, and so does every libpng allocation (libjpeg keeps its own
 *    small internal pools, bounded by the pixel cap).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "core/core.h"

#define DEFAULT_MAX_PIXELS ((size_t)64 << 20) /* 64 Mpixel (64 * 2^20) */
#define JPEG_MAX_SCANS 1000                   /* progressive files with more scans are refused (CPU DoS) */

static const uint8_t PNG_MAGIC[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
static const uint8_t JPEG_MAGIC[3] = {0xff, 0xd8, 0xff};

/* Checks width x height against the cap and computes the RGB buffer size. */
static ei_status check_pixels(const char *fmt_name, uint64_t w, uint64_t h, size_t cap, size_t *rgb_bytes,
                              char *err, size_t errlen) {
  if (w == 0 || h == 0)
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "%s has an empty size: %llux%llu pixels", fmt_name,
                   (unsigned long long)w, (unsigned long long)h);
  uint64_t pixels = w * h; /* both < 2^32: cannot overflow */
  if (pixels > cap || w > INT32_MAX || h > INT32_MAX)
    return ei__err(err, errlen, EI_E_LIMIT, "%s too large: %llux%llu pixels exceeds the cap of %zu pixels",
                   fmt_name, (unsigned long long)w, (unsigned long long)h, cap);
  if (pixels > SIZE_MAX / 3)
    return ei__err(err, errlen, EI_E_LIMIT, "%s too large: %llux%llu pixels", fmt_name, (unsigned long long)w,
                   (unsigned long long)h);
  *rgb_bytes = (size_t)pixels * 3;
  return EI_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* JPEG                                                                                                   */
/* ------------------------------------------------------------------------------------------------------ */

typedef struct jpeg_ctx {
  struct jpeg_error_mgr pub; /* must be first: libjpeg hands us cinfo->err */
  struct jpeg_decompress_struct d;
  struct jpeg_progress_mgr progress;
  jmp_buf jb;
  ei_status status;
  int truncated;
  char msg[JMSG_LENGTH_MAX];
  /* Buffers owned while decoding (freed on error by the caller of setjmp). */
  uint8_t *rgb;
  uint8_t *row; /* CMYK scanline */
} jpeg_ctx;

static void jpeg_fail(j_common_ptr cinfo, int truncated) {
  jpeg_ctx *c = (jpeg_ctx *)cinfo->err;
  c->status = EI_E_INVALID_ARGUMENT;
  c->truncated = truncated;
  (*cinfo->err->format_message)(cinfo, c->msg);
  longjmp(c->jb, 1);
}

static void jpeg_on_error_exit(j_common_ptr cinfo) { jpeg_fail(cinfo, 0); }

/* Warnings that mean missing or damaged entropy-coded data are errors; the others (unknown JFIF revision,
 * extraneous bytes before a marker, bad ICC marker...) are harmless and ignored. Nothing is printed. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return; /* trace messages */
  switch (cinfo->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER: jpeg_fail(cinfo, 1); break;
    case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_PROGRESSION: jpeg_fail(cinfo, 0); break;
    default: cinfo->err->num_warnings++; break;
  }
}

static void jpeg_on_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  j_decompress_ptr d = (j_decompress_ptr)cinfo;
  if (d->input_scan_number > JPEG_MAX_SCANS) {
    jpeg_ctx *c = (jpeg_ctx *)cinfo->err;
    c->status = EI_E_LIMIT;
    snprintf(c->msg, sizeof c->msg, "more than %d scans", JPEG_MAX_SCANS);
    longjmp(c->jb, 1);
  }
}

static inline uint8_t mul255(unsigned a, unsigned b) { return (uint8_t)((a * b + 127) / 255); }

/* CMYK (or YCCK decoded to CMYK) scanline to RGB. Adobe files store inverted CMYK (0 = full ink). */
static void cmyk_to_rgb(const uint8_t *in, uint8_t *out, unsigned width, int inverted) {
  for (unsigned x = 0; x < width; x++, in += 4, out += 3) {
    unsigned c = in[0], m = in[1], y = in[2], k = in[3];
    if (!inverted) c = 255 - c, m = 255 - m, y = 255 - y, k = 255 - k;
    out[0] = mul255(c, k);
    out[1] = mul255(m, k);
    out[2] = mul255(y, k);
  }
}

/* Picks the output colour space; returns 0 for a colour space we cannot turn into RGB. */
static int jpeg_pick_output(j_decompress_ptr d, int *cmyk) {
  *cmyk = 0;
  switch (d->jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB: d->out_color_space = JCS_RGB; return 1;
    case JCS_CMYK:
    case JCS_YCCK: d->out_color_space = JCS_CMYK; *cmyk = 1; return 1;
    default: return 0;
  }
}

/* The part of the JPEG decoder that runs under setjmp. Everything it allocates is recorded in c so the
 * caller can release it after a longjmp. */
static ei_status jpeg_decode_body(j_decompress_ptr d, jpeg_ctx *c, size_t cap, ei_image *out, char *err,
                                  size_t errlen) {
  jpeg_read_header(d, TRUE);
  size_t rgb_bytes = 0;
  ei_status s = check_pixels("JPEG", d->image_width, d->image_height, cap, &rgb_bytes, err, errlen);
  if (s != EI_OK) return s;
  int cmyk = 0;
  if (!jpeg_pick_output(d, &cmyk))
    return ei__err(err, errlen, EI_E_UNSUPPORTED, "JPEG colour space %d with %d components is not supported",
                   (int)d->jpeg_color_space, d->num_components);
  jpeg_start_decompress(d);
  if (d->output_components != (cmyk ? 4 : 3) || d->output_width != d->image_width ||
      d->output_height != d->image_height)
    return ei__err(err, errlen, EI_E_INTERNAL, "JPEG decoder produced %d components of %ux%u", d->output_components,
                   d->output_width, d->output_height);
  c->rgb = ei__malloc(rgb_bytes);
  if (!c->rgb) return ei__err(err, errlen, EI_E_NOMEM, "out of memory for a %zu-byte JPEG image", rgb_bytes);
  size_t stride = (size_t)d->output_width * 3;
  if (cmyk) {
    c->row = ei__malloc((size_t)d->output_width * 4);
    if (!c->row) return ei__err(err, errlen, EI_E_NOMEM, "out of memory for a JPEG scanline");
  }
  while (d->output_scanline < d->output_height) {
    uint8_t *dst = c->rgb + (size_t)d->output_scanline * stride;
    JSAMPROW row = cmyk ? c->row : dst;
    if (jpeg_read_scanlines(d, &row, 1) != 1)
      return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "truncated JPEG: no data for row %u",
                     d->output_scanline);
    if (cmyk) cmyk_to_rgb(c->row, dst, d->output_width, d->saw_Adobe_marker);
  }
  jpeg_finish_decompress(d);
  out->width = (int)d->output_width;
  out->height = (int)d->output_height;
  out->rgb = c->rgb;
  c->rgb = NULL;
  return EI_OK;
}

/* The decoder state lives on the heap, not in decode_jpeg's frame: objects that libjpeg changes between
 * setjmp and longjmp would otherwise be "indeterminate" after the jump (C11 7.13.2.1). */
static ei_status decode_jpeg(const uint8_t *data, size_t size, size_t cap, ei_image *out, char *err,
                             size_t errlen) {
  if ((unsigned long)size != size) return ei__err(err, errlen, EI_E_LIMIT, "JPEG file too large");
  jpeg_ctx *const c = ei__calloc(1, sizeof *c); /* c->d.mem == NULL: jpeg_destroy is safe at any point */
  if (!c) return ei__err(err, errlen, EI_E_NOMEM, "out of memory for a JPEG decoder");
  c->d.err = jpeg_std_error(&c->pub);
  c->pub.error_exit = jpeg_on_error_exit;
  c->pub.emit_message = jpeg_on_message;
  c->progress.progress_monitor = jpeg_on_progress;
  ei_status s;
  if (setjmp(c->jb)) {
    if (c->truncated)
      s = ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "truncated JPEG: the data ends after %zu bytes (%s)", size,
                  c->msg);
    else
      s = ei__err(err, errlen, c->status, "corrupt JPEG: %s", c->msg);
  } else {
    jpeg_create_decompress(&c->d);
    c->d.progress = &c->progress;
    jpeg_mem_src(&c->d, data, (unsigned long)size);
    s = jpeg_decode_body(&c->d, c, cap, out, err, errlen);
  }
  jpeg_destroy_decompress(&c->d);
  ei__free(c->row);
  ei__free(c->rgb);
  ei__free(c);
  return s;
}

/* ------------------------------------------------------------------------------------------------------ */
/* PNG                                                                                                    */
/* ------------------------------------------------------------------------------------------------------ */

typedef struct png_ctx {
  const uint8_t *data;
  size_t size, pos;
  int truncated, nomem;
  char msg[160];
  /* Buffers owned while decoding (freed on error by the caller of setjmp). */
  uint8_t *rgb;
  png_bytep *rows;
} png_ctx;

static void png_on_error(png_structp png, png_const_charp msg) {
  png_ctx *c = png_get_error_ptr(png);
  snprintf(c->msg, sizeof c->msg, "%s", msg);
  png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg; /* ancillary-chunk complaints (bad iCCP, ...): ignored, never printed */
}

static png_voidp png_on_malloc(png_structp png, png_alloc_size_t n) {
  void *p = ei__malloc(n);
  if (!p) ((png_ctx *)png_get_mem_ptr(png))->nomem = 1;
  return p;
}

static void png_on_free(png_structp png, png_voidp p) {
  (void)png;
  ei__free(p);
}

static void png_on_read(png_structp png, png_bytep dst, size_t n) {
  png_ctx *c = png_get_io_ptr(png);
  if (n > c->size - c->pos) {
    c->truncated = 1;
    png_error(png, "unexpected end of data");
  }
  memcpy(dst, c->data + c->pos, n);
  c->pos += n;
}

/* Requests 8-bit RGB whatever the stored format. */
static void png_set_rgb8(png_structp png, png_infop info) {
  int color = png_get_color_type(png, info);
  png_set_expand(png); /* palette -> RGB, grey 1/2/4 -> 8, tRNS -> alpha (dropped below) */
  png_set_strip_16(png);
  png_set_strip_alpha(png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
}

static ei_status png_decode_body(png_structp png, png_infop info, png_ctx *c, size_t cap, ei_image *out,
                                 char *err, size_t errlen) {
  png_read_info(png, info);
  png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  size_t rgb_bytes = 0;
  ei_status s = check_pixels("PNG", w, h, cap, &rgb_bytes, err, errlen);
  if (s != EI_OK) return s;
  png_set_rgb8(png, info);
  size_t stride = (size_t)w * 3;
  if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 || png_get_rowbytes(png, info) != stride)
    return ei__err(err, errlen, EI_E_INTERNAL, "PNG transforms gave %d channels of %d bits",
                   png_get_channels(png, info), png_get_bit_depth(png, info));
  c->rgb = ei__malloc(rgb_bytes);
  c->rows = ei__calloc(h, sizeof(png_bytep));
  if (!c->rgb || !c->rows)
    return ei__err(err, errlen, EI_E_NOMEM, "out of memory for a %ux%u PNG image", (unsigned)w, (unsigned)h);
  for (png_uint_32 y = 0; y < h; y++) c->rows[y] = c->rgb + (size_t)y * stride;
  png_read_image(png, c->rows);
  png_read_end(png, NULL); /* reads up to IEND: a file cut after the pixels is still truncated */
  out->width = (int)w;
  out->height = (int)h;
  out->rgb = c->rgb;
  c->rgb = NULL;
  return EI_OK;
}

/* As for JPEG, the state libpng changes before a longjmp lives on the heap (png_ctx) or is set before setjmp
 * and never changed after it (png, info). */
static ei_status decode_png(const uint8_t *data, size_t size, size_t cap, ei_image *out, char *err, size_t errlen) {
  png_ctx *const c = ei__calloc(1, sizeof *c);
  if (!c) return ei__err(err, errlen, EI_E_NOMEM, "out of memory for a PNG decoder");
  c->data = data;
  c->size = size;
  png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, c, png_on_error, png_on_warning, c,
                                             png_on_malloc, png_on_free);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    ei__free(c);
    return ei__err(err, errlen, EI_E_NOMEM, "out of memory for a PNG decoder");
  }
  ei_status s;
  if (setjmp(png_jmpbuf(png))) {
    if (c->truncated)
      s = ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "truncated PNG: the data ends after %zu bytes", c->size);
    else if (c->nomem)
      s = ei__err(err, errlen, EI_E_NOMEM, "out of memory decoding PNG: %s", c->msg);
    else
      s = ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "corrupt PNG: %s", c->msg);
  } else {
    /* Our own cap replaces libpng's default 1,000,000-pixel width/height limits. */
    png_set_user_limits(png, 0x7fffffffu, 0x7fffffffu);
    png_set_read_fn(png, c, png_on_read);
    s = png_decode_body(png, info, c, cap, out, err, errlen);
  }
  png_destroy_read_struct(&png, &info, NULL);
  ei__free(c->rows);
  ei__free(c->rgb);
  ei__free(c);
  return s;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Public API                                                                                             */
/* ------------------------------------------------------------------------------------------------------ */

ei_status ei_image_decode(const void *data, size_t size, size_t max_pixels, ei_image *out, char *err,
                          size_t errlen) {
  if (!out) return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "ei_image_decode: out is NULL");
  memset(out, 0, sizeof *out);
  if (!data && size) return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "ei_image_decode: data is NULL");
  size_t cap = max_pixels ? max_pixels : DEFAULT_MAX_PIXELS;
  const uint8_t *b = data;
  if (size >= sizeof PNG_MAGIC && memcmp(b, PNG_MAGIC, sizeof PNG_MAGIC) == 0)
    return decode_png(b, size, cap, out, err, errlen);
  if (size >= sizeof JPEG_MAGIC && memcmp(b, JPEG_MAGIC, sizeof JPEG_MAGIC) == 0)
    return decode_jpeg(b, size, cap, out, err, errlen);
  return ei__err(err, errlen, EI_E_UNSUPPORTED, "not a JPEG or PNG image");
}

/* Reads a whole regular file into an ei__malloc'd buffer. */
static ei_status read_whole_file(const char *path, uint8_t **buf, size_t *size, char *err, size_t errlen) {
  *buf = NULL;
  *size = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ei__err(err, errlen, EI_E_IO, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  ei_status s = EI_OK;
  if (fstat(fd, &st) != 0) {
    s = ei__err(err, errlen, EI_E_IO, "cannot stat %s: %s", path, strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    s = ei__err(err, errlen, EI_E_IO, "%s is not a regular file", path);
  } else if ((uint64_t)st.st_size > SIZE_MAX / 2) {
    s = ei__err(err, errlen, EI_E_LIMIT, "%s is too large", path);
  } else {
    size_t n = (size_t)st.st_size, got = 0;
    uint8_t *p = ei__malloc(n ? n : 1);
    if (!p) s = ei__err(err, errlen, EI_E_NOMEM, "out of memory reading %s (%zu bytes)", path, n);
    while (p && got < n) {
      ssize_t r = read(fd, p + got, n - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        s = ei__err(err, errlen, EI_E_IO, "cannot read %s: %s", path, r < 0 ? strerror(errno) : "file shrank");
        break;
      }
      got += (size_t)r;
    }
    if (s == EI_OK) {
      *buf = p;
      *size = n;
    } else {
      ei__free(p);
    }
  }
  close(fd);
  return s;
}

ei_status ei_image_load(const char *path, size_t max_pixels, ei_image *out, char *err, size_t errlen) {
  if (!out) return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "ei_image_load: out is NULL");
  memset(out, 0, sizeof *out);
  if (!path) return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "ei_image_load: path is NULL");
  uint8_t *buf = NULL;
  size_t size = 0;
  ei_status s = read_whole_file(path, &buf, &size, err, errlen);
  if (s != EI_OK) return s;
  s = ei_image_decode(buf, size, max_pixels, out, err, errlen); /* callers prefix content errors with the path */
  ei__free(buf);
  return s;
}

void ei_image_free(ei_image *img) {
  if (!img) return;
  ei__free(img->rgb);
  memset(img, 0, sizeof *img);
}
