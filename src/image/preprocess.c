/* Image preprocessing: RGB8 image -> normalized planar float tensor (ei_image_to_chw).
 *
 * The pipeline is torchvision's classic ImageNet one, Resize(resize) -> CenterCrop(crop) -> ToTensor ->
 * Normalize(mean, std), computed in one pass over the cropped output window (no full-size copy):
 *
 *  Resize(int): the shorter side becomes `resize`, the longer int(resize * long / short) (truncated, exactly
 *    as torchvision's _compute_resized_output_size). The interpolation is bilinear with half-pixel centres
 *    and NO antialiasing, i.e. torch.nn.functional.interpolate(mode="bilinear", align_corners=False), which is
 *    what torchvision's Resize(..., antialias=False) does on tensors:
 *      scale = in / out (float),  src = scale * (dst + 0.5) - 0.5, clamped below at 0,
 *      i0 = floor(src), i1 = min(i0 + 1, in - 1), w1 = src - i0, w0 = 1 - w1,
 *      value = wy0 * (wx0 * p[i0y][i0x] + wx1 * p[i0y][i1x]) + wy1 * (wx0 * p[i1y][i0x] + wx1 * p[i1y][i1x]).
 *    The arithmetic is float32 like torch's CPU kernel. When downscaling by a large factor this differs from
 *    PIL's resize (which always antialiases); the resized values are not rounded to 8 bits.
 *  CenterCrop: top = int(round((h - crop_h) / 2.0)) with Python's round-half-to-even, same for left. A crop
 *    larger than the resized image is an error (torchvision would zero-pad).
 *  Output: (value * scale - mean[c]) / std[c], channel-major (CHW). channels == 1 uses the ITU-R 601 luma
 *    0.299 R + 0.587 G + 0.114 B of the interpolated RGB, with mean[0] / std[0].
 */
#include <limits.h>
#include <math.h>

#include "core/core.h"

void ei_preprocess_init(ei_preprocess *p) {
  if (!p) return;
  memset(p, 0, sizeof *p);
  p->resize = 256;
  p->crop_w = 224;
  p->crop_h = 224;
  p->channels = 3;
  p->scale = 1.0f / 255.0f;
  p->mean[0] = 0.485f, p->mean[1] = 0.456f, p->mean[2] = 0.406f;
  p->std[0] = 0.229f, p->std[1] = 0.224f, p->std[2] = 0.225f;
}

/* torchvision Resize(int) output size, in int64 (may exceed INT_MAX for absurd aspect ratios). */
static void resized_size(int resize, int in_w, int in_h, int64_t *rw, int64_t *rh) {
  if (resize <= 0) {
    *rw = in_w;
    *rh = in_h;
    return;
  }
  int64_t shorter = in_w <= in_h ? in_w : in_h, longer = in_w <= in_h ? in_h : in_w;
  /* int(size * long / short): the product is exact in a double, the division correctly rounded (as Python). */
  double l = (double)((int64_t)resize * longer) / (double)shorter;
  int64_t new_long = l >= (double)INT64_MAX ? INT64_MAX : (int64_t)l;
  if (in_w <= in_h) {
    *rw = resize;
    *rh = new_long;
  } else {
    *rw = new_long;
    *rh = resize;
  }
}

/* Invalid input sizes or parameters give 0x0 (ei_image_to_chw reports why). */
void ei_preprocess_out_size(const ei_preprocess *p, int in_w, int in_h, int *out_w, int *out_h) {
  int w = 0, h = 0;
  if (p && in_w > 0 && in_h > 0 && p->resize >= 0 && p->crop_w >= 0 && p->crop_h >= 0) {
    int64_t rw = 0, rh = 0;
    resized_size(p->resize, in_w, in_h, &rw, &rh);
    w = p->crop_w > 0 ? p->crop_w : (rw > INT_MAX ? INT_MAX : (int)rw);
    h = p->crop_h > 0 ? p->crop_h : (rh > INT_MAX ? INT_MAX : (int)rh);
  }
  if (out_w) *out_w = w;
  if (out_h) *out_h = h;
}

/* Python's int(round(x / 2.0)) for a non-negative integer x: halves go to the even neighbour. */
static int64_t center_offset(int64_t excess) {
  int64_t q = excess / 2;
  if ((excess & 1) && (q & 1)) q++;
  return q;
}

typedef struct tap {
  int i0, i1;   /* source indices */
  float w0, w1; /* their weights */
} tap;

/* Bilinear taps for output positions first..first+count-1 of an axis resized from in_size to out_size. */
static void axis_taps(int in_size, int64_t out_size, int64_t first, int count, tap *t) {
  float scale = (float)in_size / (float)out_size;
  for (int k = 0; k < count; k++) {
    int64_t d = first + k;
    if (out_size == in_size) {
      t[k] = (tap){(int)d, (int)d, 1.0f, 0.0f};
      continue;
    }
    float src = scale * ((float)d + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
    int i0 = (int)src;
    if (i0 > in_size - 1) i0 = in_size - 1; /* float rounding on huge sizes: stay in bounds */
    int i1 = i0 < in_size - 1 ? i0 + 1 : i0;
    float w1 = src - (float)i0;
    w1 = w1 < 0.0f ? 0.0f : (w1 > 1.0f ? 1.0f : w1);
    t[k] = (tap){i0, i1, 1.0f - w1, w1};
  }
}

static ei_status check_params(const ei_image *img, const ei_preprocess *p, const float *out, char *err,
                              size_t errlen) {
  if (!img || !p || !out)
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "ei_image_to_chw: %s is NULL",
                   !img ? "img" : !p ? "preprocess" : "out");
  if (img->width <= 0 || img->height <= 0 || !img->rgb)
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "ei_image_to_chw: empty image (%dx%d%s)", img->width,
                   img->height, img->rgb ? "" : ", no pixels");
  if (p->resize < 0 || p->crop_w < 0 || p->crop_h < 0)
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "preprocess: negative resize %d or crop %dx%d", p->resize,
                   p->crop_w, p->crop_h);
  if (p->channels != 1 && p->channels != 3)
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "preprocess: channels must be 1 or 3, not %d", p->channels);
  if (!isfinite(p->scale))
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "preprocess: scale %g is not finite", (double)p->scale);
  for (int c = 0; c < p->channels; c++)
    if (!(p->std[c] != 0.0f) || !isfinite(p->std[c]) || !isfinite(p->mean[c]))
      return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "preprocess: channel %d has mean %g std %g", c,
                     (double)p->mean[c], (double)p->std[c]);
  return EI_OK;
}

/* The interpolated (unscaled) value of channel c at the taps ty, tx. */
static inline float sample(const uint8_t *r0, const uint8_t *r1, const tap *ty, const tap *tx, int c) {
  const uint8_t *a = r0 + (size_t)tx->i0 * 3 + c, *b = r0 + (size_t)tx->i1 * 3 + c;
  const uint8_t *e = r1 + (size_t)tx->i0 * 3 + c, *f = r1 + (size_t)tx->i1 * 3 + c;
  return ty->w0 * (tx->w0 * (float)*a + tx->w1 * (float)*b) + ty->w1 * (tx->w0 * (float)*e + tx->w1 * (float)*f);
}

static void resample(const ei_image *img, const ei_preprocess *p, const tap *tx, int ow, const tap *ty, int oh,
                     float *out) {
  size_t stride = (size_t)img->width * 3, plane = (size_t)ow * oh;
  for (int y = 0; y < oh; y++) {
    const uint8_t *r0 = img->rgb + (size_t)ty[y].i0 * stride, *r1 = img->rgb + (size_t)ty[y].i1 * stride;
    float *o = out + (size_t)y * ow;
    for (int x = 0; x < ow; x++) {
      float r = sample(r0, r1, &ty[y], &tx[x], 0), g = sample(r0, r1, &ty[y], &tx[x], 1);
      float b = sample(r0, r1, &ty[y], &tx[x], 2);
      if (p->channels == 1) {
        float luma = 0.299f * r + 0.587f * g + 0.114f * b;
        o[x] = (luma * p->scale - p->mean[0]) / p->std[0];
      } else {
        o[x] = (r * p->scale - p->mean[0]) / p->std[0];
        o[plane + x] = (g * p->scale - p->mean[1]) / p->std[1];
        o[2 * plane + x] = (b * p->scale - p->mean[2]) / p->std[2];
      }
    }
  }
}

ei_status ei_image_to_chw(const ei_image *img, const ei_preprocess *p, float *out, size_t out_floats, char *err,
                          size_t errlen) {
  ei_status s = check_params(img, p, out, err, errlen);
  if (s != EI_OK) return s;
  int64_t rw = 0, rh = 0;
  resized_size(p->resize, img->width, img->height, &rw, &rh);
  if (rw > INT_MAX || rh > INT_MAX)
    return ei__err(err, errlen, EI_E_LIMIT, "preprocess: resizing %dx%d to a shorter side of %d gives %lldx%lld",
                   img->width, img->height, p->resize, (long long)rw, (long long)rh);
  int ow = p->crop_w > 0 ? p->crop_w : (int)rw, oh = p->crop_h > 0 ? p->crop_h : (int)rh;
  if (ow > rw || oh > rh)
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT, "preprocess: crop %dx%d is larger than the %s %lldx%lld",
                   ow, oh, p->resize > 0 ? "resized image" : "image", (long long)rw, (long long)rh);
  size_t need = 0;
  if (!ei__mul_size((size_t)ow * (size_t)oh, (size_t)p->channels, &need))
    return ei__err(err, errlen, EI_E_LIMIT, "preprocess: output %dx%dx%d is too large", p->channels, oh, ow);
  if (out_floats < need)
    return ei__err(err, errlen, EI_E_INVALID_ARGUMENT,
                   "preprocess: output buffer holds %zu floats, %d x %d x %d = %zu are needed", out_floats,
                   p->channels, oh, ow, need);
  tap *taps = ei__calloc((size_t)ow + (size_t)oh, sizeof(tap));
  if (!taps) return ei__err(err, errlen, EI_E_NOMEM, "preprocess: out of memory");
  axis_taps(img->width, rw, center_offset(rw - ow), ow, taps);
  axis_taps(img->height, rh, center_offset(rh - oh), oh, taps + ow);
  resample(img, p, taps, ow, taps + ow, oh, out);
  ei__free(taps);
  return EI_OK;
}
