/* Helpers shared by the reference kernels. */
#include <stdio.h>

#include "graph/ir.h"

ei_status ei__broadcast_shape(const ei__tensor *a, const ei__tensor *b, ei__tensor *out, char *err, size_t errlen) {
  int r = a->rank > b->rank ? a->rank : b->rank;
  for (int i = 0; i < r; i++) {
    int ia = i - (r - a->rank), ib = i - (r - b->rank);
    int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
    if (da != db && da != 1 && db != 1)
      return ei__err(err, errlen, EI_E_SHAPE, "cannot broadcast dimension %d: %lld vs %lld", i, (long long)da,
                     (long long)db);
    out->dims[i] = da == 1 ? db : da;
  }
  out->rank = r;
  return EI_OK;
}

int64_t ei__get_int(const ei__tensor *t, int64_t i) {
  switch (t->dtype) {
    case EI_INT64: { int64_t v; memcpy(&v, (const char *)t->data + 8 * i, 8); return v; }
    case EI_INT32: return ((const int32_t *)t->data)[i];
    case EI_UINT8: case EI_BOOL: return ((const uint8_t *)t->data)[i];
    case EI_INT8: return ((const int8_t *)t->data)[i];
    case EI_INT16: return ((const int16_t *)t->data)[i];
    case EI_UINT16: return ((const uint16_t *)t->data)[i];
    case EI_UINT32: return ((const uint32_t *)t->data)[i];
    case EI_UINT64: return (int64_t)((const uint64_t *)t->data)[i];
    case EI_FLOAT: return (int64_t)((const float *)t->data)[i];
    case EI_DOUBLE: return (int64_t)((const double *)t->data)[i];
    default: return 0;
  }
}

double ei__get_double(const ei__tensor *t, int64_t i) {
  switch (t->dtype) {
    case EI_FLOAT: return ((const float *)t->data)[i];
    case EI_DOUBLE: return ((const double *)t->data)[i];
    default: return (double)ei__get_int(t, i);
  }
}

int ei__norm_axis(int64_t axis, int rank) {
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= (rank ? rank : 1)) return -1;
  return (int)axis;
}
