// Runs ggml's reference quantizers (quantize_row_*_ref from llama.cpp's ggml-quants.c) on
// an f32 file. Built and driven by tools/reference/make_quant_ggml_fixtures.py; see there.
// usage: quant_ggml_harness TYPE IN.f32 OUT.bin BLOCK_BYTES BLOCK_LEN
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
void quantize_row_q2_K_ref(const float *x, void *y, int64_t k);
void quantize_row_q3_K_ref(const float *x, void *y, int64_t k);
void quantize_row_q4_K_ref(const float *x, void *y, int64_t k);
void quantize_row_q5_K_ref(const float *x, void *y, int64_t k);
void quantize_row_q6_K_ref(const float *x, void *y, int64_t k);
void quantize_row_q8_K_ref(const float *x, void *y, int64_t k);
void quantize_row_q8_1_ref(const float *x, void *y, int64_t k);
void quantize_row_q4_0_ref(const float *x, void *y, int64_t k);
void quantize_row_q4_1_ref(const float *x, void *y, int64_t k);
void quantize_row_q5_0_ref(const float *x, void *y, int64_t k);
void quantize_row_q5_1_ref(const float *x, void *y, int64_t k);
void quantize_row_q8_0_ref(const float *x, void *y, int64_t k);
// The rest of ggml, referenced by ggml-quants.c but never reached by the row quantizers.
void ggml_abort(const char *file, int line, const char *fmt, ...) { (void)file; (void)line; (void)fmt; abort(); }
size_t ggml_row_size(int type, int64_t ne) { (void)type; (void)ne; abort(); }
const char *ggml_type_name(int type) { (void)type; abort(); }
size_t ggml_type_size(int type) { (void)type; abort(); }

int main(int argc, char **argv) {
  if (argc != 6) return 2;
  FILE *f = fopen(argv[2], "rb");
  if (!f) return 1;
  fseek(f, 0, SEEK_END); long n = ftell(f) / 4; fseek(f, 0, SEEK_SET);
  float *x = malloc(n * 4);
  if (fread(x, 4, n, f) != (size_t)n) return 1;
  fclose(f);
  int bb = atoi(argv[4]), bl = atoi(argv[5]);
  size_t ob = (size_t)(n / bl) * bb; unsigned char *y = calloc(ob, 1);
  const char *t = argv[1];
  if (!strcmp(t, "q2_k")) quantize_row_q2_K_ref(x, y, n);
  else if (!strcmp(t, "q3_k")) quantize_row_q3_K_ref(x, y, n);
  else if (!strcmp(t, "q4_k")) quantize_row_q4_K_ref(x, y, n);
  else if (!strcmp(t, "q5_k")) quantize_row_q5_K_ref(x, y, n);
  else if (!strcmp(t, "q6_k")) quantize_row_q6_K_ref(x, y, n);
  else if (!strcmp(t, "q8_k")) quantize_row_q8_K_ref(x, y, n);
  else if (!strcmp(t, "q8_1")) quantize_row_q8_1_ref(x, y, n);
  else if (!strcmp(t, "q4_0")) quantize_row_q4_0_ref(x, y, n);
  else if (!strcmp(t, "q4_1")) quantize_row_q4_1_ref(x, y, n);
  else if (!strcmp(t, "q5_0")) quantize_row_q5_0_ref(x, y, n);
  else if (!strcmp(t, "q5_1")) quantize_row_q5_1_ref(x, y, n);
  else if (!strcmp(t, "q8_0")) quantize_row_q8_0_ref(x, y, n);
  else return 2;
  f = fopen(argv[3], "wb"); fwrite(y, 1, ob, f); fclose(f); return 0;
}
