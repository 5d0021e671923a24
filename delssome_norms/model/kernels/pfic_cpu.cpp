// Fused CPU kernel of the pFIC model and Balloon-Windkessel BOLD (docs/science.md §2).
// Built on first use by delssome_norms/model/_kernel.py (which defines the ctypes ABI);
// the compiled library is cached under a key that includes this file's text.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define HAVE_MXCSR 1
#endif
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#define INL static inline __attribute__((always_inline))

template <typename T> struct Bits;
template <> struct Bits<float> {
  using I = int32_t; using U = uint32_t;
  static constexpr int mant = 23, bias = 127;
  static constexpr float exp_hi = 88.7228f, exp_lo = -87.3365f;
  // exp_terms and log_terms are not used in float32 (EXP_MINIMAX_F32, ATANH_MINIMAX_F32)
  static constexpr int exp_terms = 8, expm1_terms = 9, log_terms = 5, sin_terms = 5;
};
template <> struct Bits<double> {
  using I = int64_t; using U = uint64_t;
  static constexpr int mant = 52, bias = 1023;
  static constexpr double exp_hi = 709.78, exp_lo = -708.39;
  static constexpr int exp_terms = 14, expm1_terms = 16, log_terms = 10, sin_terms = 10;
};

template <typename T> INL T from_bits(typename Bits<T>::I i) {
  T x;
  std::memcpy(&x, &i, sizeof(T));
  return x;
}
template <typename T> INL typename Bits<T>::I to_bits(T x) {
  typename Bits<T>::I i;
  std::memcpy(&i, &x, sizeof(T));
  return i;
}

// Series coefficients (Horner form, no divisions in the hot loop)
template <typename T> struct Coef {
  static constexpr int ne = Bits<T>::exp_terms, nm = Bits<T>::expm1_terms;
  static constexpr int nl = Bits<T>::log_terms, ns = Bits<T>::sin_terms;
  T inv_fact[24];   // 1 / k!
  T inv_odd[24];    // 1 / (2k + 1)
  T sin_c[24];      // 1 / ((2k)(2k + 1))
  T cos_c[24];      // 1 / ((2k - 1)(2k))
  constexpr Coef() : inv_fact(), inv_odd(), sin_c(), cos_c() {
    double f = 1.0;
    for (int k = 0; k < 24; ++k) {
      if (k > 0) f *= k;
      inv_fact[k] = T(1.0 / f);
      inv_odd[k] = T(1.0 / (2 * k + 1));
      sin_c[k] = k > 0 ? T(1.0 / ((2.0 * k) * (2.0 * k + 1))) : T(0);
      cos_c[k] = k > 0 ? T(1.0 / ((2.0 * k - 1) * (2.0 * k))) : T(0);
    }
  }
};
template <typename T> struct CoefTable { static constexpr Coef<T> c{}; };

// Float32 polynomials that minimise the maximum relative error (scripts/minimax_coefficients.py)
// instead of Taylor series: two (exp) and one (log) fewer multiply-adds, ~5 % less simulation
// time, at the same float32 accuracy (max 1.04 / 2.59 ulp against 0.86 / 2.59 ulp with the
// Taylor series; tests/model/test_simulate.py). Float64 keeps the Taylor series.
constexpr float EXP_MINIMAX_F32[7] = {1.0f, 1.00000004f, 0.499999921f, 0.166664202f,
                                      0.0416682256f, 0.00837481587f, 0.00138368459f};
constexpr float ATANH_MINIMAX_F32[4] = {0.999999999f, 0.33333408f, 0.199873975f, 0.149628253f};

// exp(r) for |r| <= ln2/2
template <typename T> INL T exp_poly(T r) {
  if constexpr (sizeof(T) == 4) {
    T p = EXP_MINIMAX_F32[6];
    for (int k = 5; k >= 0; --k) p = p * r + EXP_MINIMAX_F32[k];
    return p;
  } else {
    constexpr const Coef<T> &C = CoefTable<T>::c;
    T p = C.inv_fact[Bits<T>::exp_terms];
    for (int k = Bits<T>::exp_terms - 1; k >= 0; --k) p = p * r + C.inv_fact[k];
    return p;
  }
}
// exp(x) with IEEE special cases (overflow -> inf, underflow -> 0, NaN -> NaN).
template <typename T> INL T fexp(T x) {
  using I = typename Bits<T>::I;
  const T ln2_hi = T(0.693145751953125), ln2_lo = T(1.42860682030941723212e-6);
  const T log2e = T(1.44269504088896340736);
  T xc = x > Bits<T>::exp_hi ? Bits<T>::exp_hi : (x < Bits<T>::exp_lo ? Bits<T>::exp_lo : x);
  xc = (x != x) ? T(0) : xc;
  T n = std::floor(xc * log2e + T(0.5));
  T r = (xc - n * ln2_hi) - n * ln2_lo;
  T p = exp_poly(r);
  I e = (I)n;
  // 2^n in two halves so that every n of the clamped range stays in the normal range
  I e1 = e >> 1, e2 = e - e1;
  T s1 = from_bits<T>((e1 + Bits<T>::bias) << Bits<T>::mant);
  T s2 = from_bits<T>((e2 + Bits<T>::bias) << Bits<T>::mant);
  T y = p * s1 * s2;
  y = x > Bits<T>::exp_hi ? std::numeric_limits<T>::infinity() : y;
  y = x < Bits<T>::exp_lo ? T(0) : y;
  return (x != x) ? x : y;
}
// expm1(x): series near 0 (no cancellation), exp(x) - 1 elsewhere.
template <typename T> INL T fexpm1(T x) {
  constexpr const Coef<T> &C = CoefTable<T>::c;
  const bool big = x > T(0.34657) || x < T(-0.34657) || x != x;
  T xs = big ? T(0) : x;
  T p = C.inv_fact[Bits<T>::expm1_terms];
  for (int k = Bits<T>::expm1_terms - 1; k >= 1; --k) p = p * xs + C.inv_fact[k];
  T small = xs * p;
  return big ? fexp(x) - T(1) : small;
}
// natural log for x > 0 (x <= 0 -> NaN or -inf, inf -> inf, NaN -> NaN)
template <typename T> INL T flog(T x) {
  using I = typename Bits<T>::I;
  constexpr const Coef<T> &C = CoefTable<T>::c;
  const I mant_mask = (I(1) << Bits<T>::mant) - 1;
  const T tiny = std::numeric_limits<T>::min(), inf = std::numeric_limits<T>::infinity();
  T xn = (x > tiny && x < inf) ? x : T(1);
  I b = to_bits(xn);
  I e = ((b >> Bits<T>::mant) & I(2 * Bits<T>::bias + 1)) - Bits<T>::bias;
  T m = from_bits<T>((b & mant_mask) | (I(Bits<T>::bias) << Bits<T>::mant));  // [1, 2)
  bool hi = m > T(1.41421356237309504880);
  m = hi ? m * T(0.5) : m;
  T ef = T(e) + (hi ? T(1) : T(0));
  T s = (m - T(1)) / (m + T(1));
  T s2 = s * s;
  T p;  // atanh(s) / s as a polynomial in s^2
  if constexpr (sizeof(T) == 4) {
    p = ATANH_MINIMAX_F32[3];
    for (int k = 2; k >= 0; --k) p = p * s2 + ATANH_MINIMAX_F32[k];
  } else {
    p = C.inv_odd[Bits<T>::log_terms - 1];
    for (int k = Bits<T>::log_terms - 2; k >= 0; --k) p = p * s2 + C.inv_odd[k];
  }
  T y = ef * T(0.69314718055994530942) + T(2) * s * p;
  y = (x >= T(0) && x <= tiny) ? -inf : y;
  y = (x < T(0) || x != x) ? std::numeric_limits<T>::quiet_NaN() : y;
  y = (x == inf) ? x : y;
  return y;
}
// sin and cos of 2*pi*t for t in [-0.5, 0.5]
template <typename T> INL void fsincos2pi(T t, T &s, T &c) {
  constexpr const Coef<T> &C = CoefTable<T>::c;
  T q = std::floor(T(4) * t + T(0.5));
  T r = (t - q * T(0.25)) * T(6.28318530717958647693);
  T r2 = r * r;
  T ps = T(1), pc = T(1);
  for (int k = Bits<T>::sin_terms; k >= 1; --k) {
    ps = T(1) - r2 * C.sin_c[k] * ps;
    pc = T(1) - r2 * C.cos_c[k] * pc;
  }
  T sr = r * ps, cr = pc;
  int qi = ((int)q) & 3;
  s = qi == 0 ? sr : (qi == 1 ? cr : (qi == 2 ? -sr : -cr));
  c = qi == 0 ? cr : (qi == 1 ? -sr : (qi == 2 ? -cr : sr));
}

// rate H(x) = y / (1 - exp(-d y)), y = a x - b. Near y = 0 (|d y| < 0.35, where 1 - exp(-d y)
// would cancel) the Bernoulli series of u / (1 - exp(-u)) is used instead: 1/d (1 + u/2 + u^2/12
// - u^4/720 + u^6/30240 - u^8/1209600 + u^10/47900160), u = d y.
template <typename T> INL T frate(T x, T a, T b, T d, T inv_d) {
  T y = a * x - b;
  T u = d * y;
  bool small = u < T(0.35) && u > T(-0.35);
  T us = small ? u : T(0);
  T u2 = us * us;
  T ser = T(1.0 / 47900160.0);
  ser = ser * u2 - T(1.0 / 1209600.0);
  ser = ser * u2 + T(1.0 / 30240.0);
  ser = ser * u2 - T(1.0 / 720.0);
  ser = ser * u2 + T(1.0 / 12.0);
  ser = (ser * us + T(0.5)) * us + T(1);
  T ys = small ? T(1) : y;
  T h = ys / (T(1) - fexp(-d * ys));
  return small ? ser * inv_d : h;  // both branches are computed: one division, not two
}

// Philox4x32-10 (Salmon et al. 2011), L lanes at once (lane l uses counter word c2 = m0 + l).
// One round: (c0, c1, c2, c3) <- (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1, lo(M0 c0)).
// The generic loop is the reference; the AVX-512/AVX2 paths compute the same bits with explicit
// 32 x 32 -> 64-bit products of even and odd lanes (compilers widen the generic loop to 64-bit
// lanes, which costs about twice as many instructions).
constexpr uint32_t PHILOX_M0 = 0xD2511F53u, PHILOX_M1 = 0xCD9E8D57u;
constexpr uint32_t PHILOX_W0 = 0x9E3779B9u, PHILOX_W1 = 0xBB67AE85u;

template <int L>
INL void philox_generic(uint32_t c0i, uint32_t c1i, uint32_t m0, uint32_t c3i, uint32_t k0,
                        uint32_t k1, uint32_t c0[L], uint32_t c1[L], uint32_t c2[L], uint32_t c3[L]) {
#pragma omp simd
  for (int l = 0; l < L; ++l) {
    c0[l] = c0i;
    c1[l] = c1i;
    c2[l] = m0 + (uint32_t)l;
    c3[l] = c3i;
  }
  for (int r = 0; r < 10; ++r) {
#pragma omp simd
    for (int l = 0; l < L; ++l) {
      uint64_t p0 = (uint64_t)PHILOX_M0 * c0[l];
      uint64_t p1 = (uint64_t)PHILOX_M1 * c2[l];
      uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0;
      uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
      c1[l] = (uint32_t)p1;
      c3[l] = (uint32_t)p0;
      c0[l] = n0;
      c2[l] = n2;
    }
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
}

#if defined(__AVX512F__)
INL void mulhilo16(__m512i a, __m512i m, __m512i &hi, __m512i &lo) {
  const __m512i even = _mm512_mul_epu32(a, m);                          // lanes 0, 2, ...
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);   // lanes 1, 3, ...
  hi = _mm512_mask_blend_epi32((__mmask16)0xAAAA, _mm512_srli_epi64(even, 32), odd);
  lo = _mm512_mask_blend_epi32((__mmask16)0xAAAA, even, _mm512_slli_epi64(odd, 32));
}
INL void philox16(uint32_t c0i, uint32_t c1i, uint32_t m0, uint32_t c3i, uint32_t k0, uint32_t k1,
                  uint32_t *c0, uint32_t *c1, uint32_t *c2, uint32_t *c3) {
  const __m512i M0 = _mm512_set1_epi32((int)PHILOX_M0), M1 = _mm512_set1_epi32((int)PHILOX_M1);
  __m512i x0 = _mm512_set1_epi32((int)c0i), x1 = _mm512_set1_epi32((int)c1i);
  __m512i x2 = _mm512_add_epi32(_mm512_set1_epi32((int)m0),
                                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  __m512i x3 = _mm512_set1_epi32((int)c3i);
  for (int r = 0; r < 10; ++r) {
    __m512i hi0, lo0, hi1, lo1;
    mulhilo16(x0, M0, hi0, lo0);
    mulhilo16(x2, M1, hi1, lo1);
    x0 = _mm512_ternarylogic_epi32(hi1, x1, _mm512_set1_epi32((int)k0), 0x96);  // a ^ b ^ c
    x2 = _mm512_ternarylogic_epi32(hi0, x3, _mm512_set1_epi32((int)k1), 0x96);
    x1 = lo1;
    x3 = lo0;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  _mm512_storeu_si512((void *)c0, x0);
  _mm512_storeu_si512((void *)c1, x1);
  _mm512_storeu_si512((void *)c2, x2);
  _mm512_storeu_si512((void *)c3, x3);
}
#endif
#if defined(__AVX2__)
INL void mulhilo8(__m256i a, __m256i m, __m256i &hi, __m256i &lo) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}
INL void philox8(uint32_t c0i, uint32_t c1i, uint32_t m0, uint32_t c3i, uint32_t k0, uint32_t k1,
                 uint32_t *c0, uint32_t *c1, uint32_t *c2, uint32_t *c3) {
  const __m256i M0 = _mm256_set1_epi32((int)PHILOX_M0), M1 = _mm256_set1_epi32((int)PHILOX_M1);
  __m256i x0 = _mm256_set1_epi32((int)c0i), x1 = _mm256_set1_epi32((int)c1i);
  __m256i x2 = _mm256_add_epi32(_mm256_set1_epi32((int)m0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256i x3 = _mm256_set1_epi32((int)c3i);
  for (int r = 0; r < 10; ++r) {
    __m256i hi0, lo0, hi1, lo1;
    mulhilo8(x0, M0, hi0, lo0);
    mulhilo8(x2, M1, hi1, lo1);
    x0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1), _mm256_set1_epi32((int)k0));
    x2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3), _mm256_set1_epi32((int)k1));
    x1 = lo1;
    x3 = lo0;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  _mm256_storeu_si256((__m256i *)c0, x0);
  _mm256_storeu_si256((__m256i *)c1, x1);
  _mm256_storeu_si256((__m256i *)c2, x2);
  _mm256_storeu_si256((__m256i *)c3, x3);
}
#endif

template <int L>
INL void philox_lanes(uint32_t c0i, uint32_t c1i, uint32_t m0, uint32_t c3i, uint32_t k0,
                      uint32_t k1, uint32_t c0[L], uint32_t c1[L], uint32_t c2[L], uint32_t c3[L]) {
#if defined(__AVX512F__)
  if constexpr (L % 16 == 0) {
    for (int b = 0; b < L; b += 16)
      philox16(c0i, c1i, m0 + (uint32_t)b, c3i, k0, k1, c0 + b, c1 + b, c2 + b, c3 + b);
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (L % 8 == 0) {
    for (int b = 0; b < L; b += 8)
      philox8(c0i, c1i, m0 + (uint32_t)b, c3i, k0, k1, c0 + b, c1 + b, c2 + b, c3 + b);
    return;
  }
#endif
  philox_generic<L>(c0i, c1i, m0, c3i, k0, k1, c0, c1, c2, c3);
}

template <typename T> INL T bm_radius(uint32_t a) {
  T u1;
  if (sizeof(T) == 4) u1 = (T(a >> 8) + T(1)) * T(5.9604644775390625e-08);  // (0, 1], 24 bits
  else u1 = (T(a) + T(1)) * T(2.3283064365386963e-10);                    // (0, 1], 32 bits
  return std::sqrt(T(-2) * flog(u1));
}
template <typename T> INL T bm_turn(uint32_t b) {  // uniform in [-0.5, 0.5)
  if (sizeof(T) == 4) return T(b >> 8) * T(5.9604644775390625e-08) - T(0.5);
  return T(b) * T(2.3283064365386963e-10) - T(0.5);
}

// Four standard normals per lane from one Philox block (Box-Muller)
template <typename T, int L>
INL void normals_lanes(uint32_t c0i, uint32_t c1i, uint32_t m0, uint32_t k0, uint32_t k1,
                       T out[4][L]) {
  uint32_t c0[L], c1[L], c2[L], c3[L];
  philox_lanes<L>(c0i, c1i, m0, 0x5eedu, k0, k1, c0, c1, c2, c3);
#pragma omp simd
  for (int l = 0; l < L; ++l) {
    T r0 = bm_radius<T>(c0[l]), r1 = bm_radius<T>(c2[l]);
    T s0, co0, s1, co1;
    fsincos2pi(bm_turn<T>(c1[l]), s0, co0);
    fsincos2pi(bm_turn<T>(c3[l]), s1, co1);
    out[0][l] = r0 * co0;
    out[1][l] = r0 * s0;
    out[2][l] = r1 * co1;
    out[3][l] = r1 * s1;
  }
}

struct Consts {
  double I0, W_E, W_I, J_NMDA, gamma_kin, a_E, b_E, d_E, tau_E, a_I, b_I, d_I, tau_I;
  double kappa, gamma_h, tau_h, alpha, rho, k1, k2, k3, bold_scale, log_one_minus_rho;
  double dt;
};

struct Args {
  int64_t n_groups, n_regions, n_sims;
  int64_t first_step, n_steps, warmup_steps, steps_per_tr, n_drop, n_frames, final_step;
  int64_t shared_sc, n_threads, allow_team;
  uint64_t seed;
  const void *wee_j, *wei_j, *w_ie, *noise, *g_j, *sc;
  void *se, *si, *z, *f, *v, *q;
  double *acc_se, *acc_si, *acc_re;
  void *bold;
  const void *xi;  // optional external noise (n_steps, 2, n_sims, N) or NULL
};

template <typename T, int L, int R>
INL void couple_rows(const T *sc, int64_t N, int64_t i0, const T *se, T *coup, bool shared) {
  T acc[R][L];
  for (int r = 0; r < R; ++r)
#pragma omp simd
    for (int l = 0; l < L; ++l) acc[r][l] = T(0);
  if (shared) {
    for (int64_t j = 0; j < N; ++j) {
      const T *sj = se + j * L;
      for (int r = 0; r < R; ++r) {
        T w = sc[(i0 + r) * N + j];
#pragma omp simd
        for (int l = 0; l < L; ++l) acc[r][l] += w * sj[l];
      }
    }
  } else {
    for (int64_t j = 0; j < N; ++j) {
      const T *sj = se + j * L;
      for (int r = 0; r < R; ++r) {
        const T *w = sc + ((i0 + r) * N + j) * L;
#pragma omp simd
        for (int l = 0; l < L; ++l) acc[r][l] += w[l] * sj[l];
      }
    }
  }
  for (int r = 0; r < R; ++r)
#pragma omp simd
    for (int l = 0; l < L; ++l) coup[(i0 + r) * L + l] = acc[r][l];
}

template <typename T> struct P_ {
  T dt, c_e0, c_i0, aE, bE, dE, aI, bI, dI, inv_dE, inv_dI, inv_tauE, inv_tauI, gam;
  T kappa, gh, inv_tauh, inv_alpha, inv_rho, lomr;
};

// Regions r0 .. r1 - 1: S_E is read from se_in and written to se_out (the same array when one
// thread runs the whole group; two buffers when a team splits the regions, see run).
template <typename T, int L, bool REC>
static void update(int64_t r0, int64_t r1, const T *se_in, T *se_out, T *si, T *z, T *f, T *v,
                   T *q, double *acc_se, double *acc_si, double *acc_re, const T *wee,
                   const T *wei, const T *wie, const T *ns, const T *gj, const T *coup,
                   const T *xe, const T *xi, const P_<T> &P) {
  for (int64_t i = r0; i < r1; ++i) {
    const int64_t o = i * L;
#pragma omp simd
    for (int l = 0; l < L; ++l) {
      T e_ = se_in[o + l], h_ = si[o + l];
      T ie = P.c_e0 + wee[o + l] * e_ + gj[l] * coup[o + l] - wie[o + l] * h_;
      T ii = P.c_i0 + wei[o + l] * e_ - h_;
      T re = frate(ie, P.aE, P.bE, P.dE, P.inv_dE);
      T ri = frate(ii, P.aI, P.bI, P.dI, P.inv_dI);
      T de = -e_ * P.inv_tauE + (T(1) - e_) * P.gam * re;
      T di = -h_ * P.inv_tauI + ri;
      T en = e_ + P.dt * de + ns[o + l] * xe[o + l];
      T hn = h_ + P.dt * di + ns[o + l] * xi[o + l];
      se_out[o + l] = en;
      si[o + l] = hn;
      if (REC) {
        T zz = z[o + l], ff = f[o + l], vv = v[o + l], qq = q[o + l];
        T vpow = fexp(flog(vv) * P.inv_alpha);  // v^(1/alpha)
        T rfv = T(1) / (ff * vv);  // 1/f and 1/v from one division (f, v stay near 1)
        T extraction = T(1) - fexp(P.lomr * vv * rfv);  // 1 - (1 - rho)^(1/f), no cancellation near f = 1
        T dz = e_ - P.kappa * zz - P.gh * (ff - T(1));
        T dv = (ff - vpow) * P.inv_tauh;
        T dq = (ff * extraction * P.inv_rho - qq * vpow * ff * rfv) * P.inv_tauh;
        z[o + l] = zz + P.dt * dz;
        f[o + l] = ff + P.dt * zz;
        v[o + l] = vv + P.dt * dv;
        q[o + l] = qq + P.dt * dq;
        acc_se[o + l] += (double)en;
        acc_si[o + l] += (double)hn;
        acc_re[o + l] += (double)re;
      }
    }
  }
}

// Spin barrier of a team (threads sharing one group); sense is the phase counter.
struct SpinBarrier {
  std::atomic<int64_t> arrived{0}, phase{0};
  int64_t n = 1;
  void wait() {
    const int64_t ph = phase.load(std::memory_order_acquire);
    if (arrived.fetch_add(1, std::memory_order_acq_rel) == n - 1) {
      arrived.store(0, std::memory_order_relaxed);
      phase.store(ph + 1, std::memory_order_release);
      return;
    }
    for (int64_t spins = 0; phase.load(std::memory_order_acquire) == ph; ++spins) {
#if defined(__x86_64__)
      _mm_pause();
#endif
      if (spins > 256) std::this_thread::yield();  // oversubscribed: let the others run
    }
  }
};

// A team of threads integrating one group, each its own regions r0 .. r1 - 1. S_E alternates
// between the group's state and `spare` (every member reads all of S_E for the coupling), with
// one barrier per step. Without a team (team == nullptr) one thread runs all regions in place.
template <typename T> struct Team {
  SpinBarrier barrier;
  T *spare = nullptr;  // (N, L) second S_E buffer
};

template <typename T, int L>
static void run_group(const Args &a, const Consts &k, int64_t g, int64_t r0, int64_t r1,
                      Team<T> *team) {
  const int64_t N = a.n_regions;
  const int64_t GN = g * N * L;
  const T *wee = (const T *)a.wee_j + GN, *wei = (const T *)a.wei_j + GN;
  const T *wie = (const T *)a.w_ie + GN, *ns = (const T *)a.noise + GN;
  const T *gj = (const T *)a.g_j + g * L;
  const T *sc = a.shared_sc ? (const T *)a.sc : (const T *)a.sc + g * N * N * L;
  T *se = (T *)a.se + GN, *si = (T *)a.si + GN;
  T *z = (T *)a.z + GN, *f = (T *)a.f + GN, *v = (T *)a.v + GN, *q = (T *)a.q + GN;
  double *acc_se = a.acc_se + GN, *acc_si = a.acc_si + GN, *acc_re = a.acc_re + GN;
  T *bold = (T *)a.bold + g * a.n_frames * N * L;
  const T *xi_ext = (const T *)a.xi;

  T *coup = new T[N * L];
  T *xe = new T[N * L];
  T *xi = new T[N * L];
  P_<T> P;
  P.dt = T(k.dt);
  P.c_e0 = T(k.W_E * k.I0);
  P.c_i0 = T(k.W_I * k.I0);
  P.aE = T(k.a_E); P.bE = T(k.b_E); P.dE = T(k.d_E);
  P.aI = T(k.a_I); P.bI = T(k.b_I); P.dI = T(k.d_I);
  P.inv_dE = T(1.0 / k.d_E); P.inv_dI = T(1.0 / k.d_I);
  P.inv_tauE = T(1.0 / k.tau_E);
  P.inv_tauI = T(1.0 / k.tau_I);
  P.gam = T(k.gamma_kin);
  P.kappa = T(k.kappa);
  P.gh = T(k.gamma_h);
  P.inv_tauh = T(1.0 / k.tau_h);
  P.inv_alpha = T(1.0 / k.alpha);
  P.inv_rho = T(1.0 / k.rho);
  P.lomr = T(k.log_one_minus_rho);
  const T k1 = T(k.k1), k2 = T(k.k2), k3 = T(k.k3), bscale = T(k.bold_scale);
  const uint32_t key0 = (uint32_t)a.seed, key1 = (uint32_t)(a.seed >> 32);
  const int64_t m0 = g * L;
  // flattened (population, region) indices e of this member's noise: E regions r0 .. r1 - 1 are
  // e = r0 .. r1 - 1, I regions are e = N + r0 .. N + r1 - 1 (one range for the whole group)
  int64_t e_lo[2] = {r0, N + r0}, e_hi[2] = {r1, N + r1};
  const int n_ranges = (r0 == 0 && r1 == N) ? 1 : 2;
  if (n_ranges == 1) e_hi[0] = 2 * N;
  T *se_in = se, *se_out = team ? team->spare : se;

  for (int64_t s = 0; s < a.n_steps; ++s) {
    const int64_t step = a.first_step + s;
    const bool rec = step >= a.warmup_steps;
    // ---- noise: xe (E population), xi (I population), layout [N][L]
    if (xi_ext) {
      for (int64_t i = r0; i < r1; ++i)
        for (int l = 0; l < L; ++l) {
          int64_t m = m0 + l < a.n_sims ? m0 + l : a.n_sims - 1;
          xe[i * L + l] = xi_ext[((s * 2 + 0) * a.n_sims + m) * N + i];
          xi[i * L + l] = xi_ext[((s * 2 + 1) * a.n_sims + m) * N + i];
        }
    } else {
      for (int rg = 0; rg < n_ranges; ++rg) {
        for (int64_t kq = e_lo[rg] / 4; kq * 4 < e_hi[rg]; ++kq) {
          T zz[4][L];
          normals_lanes<T, L>((uint32_t)step, (uint32_t)kq, (uint32_t)m0, key0, key1, zz);
          for (int c = 0; c < 4; ++c) {
            int64_t e = kq * 4 + c;
            if (e < e_lo[rg] || e >= e_hi[rg]) continue;
            T *dst = e < N ? xe + e * L : xi + (e - N) * L;
#pragma omp simd
            for (int l = 0; l < L; ++l) dst[l] = zz[c][l];
          }
        }
      }
    }
    // ---- coupling SC . S_E
    int64_t i0 = r0;
    for (; i0 + 8 <= r1; i0 += 8) couple_rows<T, L, 8>(sc, N, i0, se_in, coup, a.shared_sc);
    for (; i0 + 4 <= r1; i0 += 4) couple_rows<T, L, 4>(sc, N, i0, se_in, coup, a.shared_sc);
    for (; i0 < r1; ++i0) couple_rows<T, L, 1>(sc, N, i0, se_in, coup, a.shared_sc);
    // ---- neural + hemodynamic update
    if (rec)
      update<T, L, true>(r0, r1, se_in, se_out, si, z, f, v, q, acc_se, acc_si, acc_re, wee, wei,
                         wie, ns, gj, coup, xe, xi, P);
    else
      update<T, L, false>(r0, r1, se_in, se_out, si, z, f, v, q, acc_se, acc_si, acc_re, wee, wei,
                          wie, ns, gj, coup, xe, xi, P);
    if (rec) {
      const int64_t t = step - a.warmup_steps;
      int64_t frames[2];
      int nf = 0;
      if ((t + 2) % a.steps_per_tr == 0) frames[nf++] = (t + 2) / a.steps_per_tr - 1 - a.n_drop;
      if (step == a.final_step) frames[nf++] = a.n_frames - 1;
      for (int w = 0; w < nf; ++w) {
        int64_t fr = frames[w];
        if (fr < 0 || fr >= a.n_frames) continue;
        T *out = bold + fr * N * L;
        for (int64_t i = r0; i < r1; ++i) {
          const int64_t o = i * L;
#pragma omp simd
          for (int l = 0; l < L; ++l) {
            T vv = v[o + l], qq = q[o + l];
            out[o + l] = bscale * (k1 * (T(1) - qq) + k2 * (T(1) - qq / vv) + k3 * (T(1) - vv));
          }
        }
      }
    }
    if (team) {  // everyone has read se_in for the coupling and written its part of se_out
      team->barrier.wait();
      T *tmp = se_in;
      se_in = se_out;
      se_out = tmp;
    }
  }
  if (team && se_in != se) std::memcpy(se + r0 * L, se_in + r0 * L, (r1 - r0) * L * sizeof(T));
  delete[] coup;
  delete[] xe;
  delete[] xi;
}

// Every kernel thread flushes denormals to zero: no slow paths in blown-up runs.
INL void flush_denormals() {
#ifdef HAVE_MXCSR
  _mm_setcsr(_mm_getcsr() | 0x8040);
#endif
}

template <typename T, int L>
static void worker(const Args *a, const Consts *k, int64_t tid, int64_t n_workers) {
  flush_denormals();
  const int64_t per = (a->n_groups + n_workers - 1) / n_workers;
  const int64_t g0 = tid * per, g1 = g0 + per < a->n_groups ? g0 + per : a->n_groups;
  for (int64_t g = g0; g < g1; ++g) run_group<T, L>(*a, *k, g, 0, a->n_regions, nullptr);
}

template <typename T, int L>
static void team_member(const Args *a, const Consts *k, int64_t g, int64_t r0, int64_t r1,
                        Team<T> *team) {
  flush_denormals();
  run_group<T, L>(*a, *k, g, r0, r1, team);
}

// Fewer groups than threads (small batches: a single subject's validation or test simulations)
// and allow_team: each group is run by a team of n_threads / n_groups threads that split its
// regions (at least 8 regions each), with one barrier per step. The arithmetic of every region
// and lane, and the noise, are those of the one-thread path: results are identical, so the
// caller may switch between the two per block of steps (it times both: on a busy machine a team
// member waiting at the barrier for a descheduled partner makes teams slower, not faster).
template <typename T, int L>
static int run(const Args *a, const Consts *k) {
  int64_t n = a->n_threads < 1 ? 1 : a->n_threads;
  const int64_t N = a->n_regions;
  int64_t per_team = (a->allow_team && a->n_groups > 0) ? n / a->n_groups : 1;
  if (per_team > N / 8) per_team = N / 8;
  if (per_team >= 2) {
    std::vector<Team<T>> teams(a->n_groups);
    std::vector<T> spare(a->n_groups * N * L);
    std::vector<std::thread> pool;
    for (int64_t g = 0; g < a->n_groups; ++g) {
      teams[g].barrier.n = per_team;
      teams[g].spare = spare.data() + g * N * L;
      for (int64_t m = 0; m < per_team; ++m)
        pool.emplace_back(team_member<T, L>, a, k, g, N * m / per_team, N * (m + 1) / per_team,
                          &teams[g]);
    }
    for (auto &th : pool) th.join();
    return 0;
  }
  if (n > a->n_groups) n = a->n_groups;
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < n; ++t) pool.emplace_back(worker<T, L>, a, k, t, n);
  for (auto &th : pool) th.join();
  return 0;
}


// ---------------------------------------------------------------------------------------------
// FCD helpers: standardised sliding-window FC vectors, and the histogram of FCD blocks
// ---------------------------------------------------------------------------------------------
// One simulation: x (T, N) -> out (W, P): column-centred, unit-norm upper-triangle window FCs.
// Window sums are kept as running sums in double (add the entering frame, remove the leaving one).
template <typename TI, typename TO>
static void window_fc_one(int64_t T, int64_t N, int64_t w, const TI *x, TO *out) {
  const int64_t P = N * (N - 1) / 2, W = T - w + 1;
  std::vector<double> xc(T * N), s1(N, 0.0), s2(N, 0.0), inv(N), sxy(P, 0.0), corr(P);
  for (int64_t n = 0; n < N; ++n) {
    double m = 0.0;
    for (int64_t t = 0; t < T; ++t) m += (double)x[t * N + n];
    m /= (double)T;
    for (int64_t t = 0; t < T; ++t) xc[t * N + n] = (double)x[t * N + n] - m;
  }
  auto add_frame = [&](int64_t t, double sign) {
    const double *f = xc.data() + t * N;
    int64_t p = 0;
    for (int64_t i = 0; i < N; ++i) {
      s1[i] += sign * f[i];
      s2[i] += sign * f[i] * f[i];
      const double fi = sign * f[i];
      double *row = sxy.data() + p;
      const double *fj = f + i + 1;
      const int64_t len = N - 1 - i;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) row[j] += fi * fj[j];
      p += len;
    }
  };
  const double inv_w = 1.0 / (double)w;
  for (int64_t t = 0; t < w; ++t) add_frame(t, 1.0);
  for (int64_t a = 0; a < W; ++a) {
    if (a > 0) {
      add_frame(a + w - 1, 1.0);
      add_frame(a - 1, -1.0);
    }
    for (int64_t n = 0; n < N; ++n) inv[n] = 1.0 / std::sqrt(s2[n] - s1[n] * s1[n] * inv_w);
    double sum = 0.0;
    int64_t p = 0;
    for (int64_t i = 0; i < N; ++i) {
      const int64_t len = N - 1 - i;
      const double ci = s1[i] * inv_w, ii = inv[i];
      const double *row = sxy.data() + p, *s1j = s1.data() + i + 1, *invj = inv.data() + i + 1;
      double *cr = corr.data() + p;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < len; ++j) {
        double c = (row[j] - ci * s1j[j]) * ii * invj[j];
        cr[j] = c;
        sum += c;
      }
      p += len;
    }
    const double mean = sum / (double)P;
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (int64_t q = 0; q < P; ++q) ss += (corr[q] - mean) * (corr[q] - mean);
    const double scale = 1.0 / std::sqrt(ss);
    TO *o = out + a * P;
#pragma omp simd
    for (int64_t q = 0; q < P; ++q) o[q] = (TO)((corr[q] - mean) * scale);
  }
}

// body(t) for t = 0 .. n_tasks - 1 on at most n_threads threads (the caller is one of them),
// each thread taking the next task when it finishes one.
template <typename F> static void parallel(int64_t n_tasks, int64_t n_threads, F &&body) {
  std::atomic<int64_t> next{0};
  const int64_t nt = n_threads < 1 ? 1 : (n_threads > n_tasks ? (n_tasks < 1 ? 1 : n_tasks) : n_threads);
  auto work = [&] {
    for (int64_t t; (t = next.fetch_add(1)) < n_tasks;) body(t);
  };
  std::vector<std::thread> pool;
  for (int64_t th = 1; th < nt; ++th) pool.emplace_back(work);
  work();
  for (auto &t : pool) t.join();
}

template <typename TI, typename TO>
static void window_fc(int64_t S, int64_t T, int64_t N, int64_t w, const TI *x, TO *out,
                      int64_t n_threads) {
  const int64_t P = N * (N - 1) / 2, W = T - w + 1;
  parallel(S, n_threads,
           [&](int64_t s) { window_fc_one<TI, TO>(T, N, w, x + s * T * N, out + s * W * P); });
}

// Bin of an FCD value among `bins` equal bins over [-1, 1] (edges clamped in; half = bins / 2);
// -1 for NaN, which is not counted (the caller compares the totals with the number of pairs).
INL int64_t fcd_bin(double value, double half, int64_t bins) {
  const double v = (value + 1.0) * half;
  if (!(v == v)) return -1;
  return v < 0.0 ? 0 : (v >= (double)bins ? bins - 1 : (int64_t)v);
}

// Histogram of the strict upper triangle of FCD blocks: block (S, b, c) holds rows r0 .. r0 + b
// and columns r0 .. r0 + c of each FCD matrix; entry (r, k) is kept when k > r.
template <typename T>
static void hist_upper_one(int64_t b, int64_t c, const T *block, int64_t bins, int64_t *cnt) {
  const double half = 0.5 * (double)bins;
  for (int64_t r = 0; r < b; ++r) {
    const T *row = block + r * c;
    for (int64_t k = r + 1; k < c; ++k) {
      const int64_t idx = fcd_bin((double)row[k], half, bins);
      if (idx >= 0) cnt[idx] += 1;
    }
  }
}

template <typename T>
static void hist_upper(int64_t S, int64_t b, int64_t c, const T *block, int64_t bins,
                       int64_t *counts, int64_t n_threads) {
  parallel(S, n_threads,
           [&](int64_t s) { hist_upper_one<T>(b, c, block + s * b * c, bins, counts + s * bins); });
}

// FCD histogram with bfloat16 products (AVX512-BF16): the Gram matrix of the standardised
// window-FC vectors (W x P per simulation, float32) with inputs rounded to bfloat16 and products
// summed in float32 (vdpbf16ps), binned by fcd_bin as hist_upper does, without storing the matrix (NaN
// entries, from a non-finite simulation, are skipped: the caller sees a short total). Rounding
// the inputs moves an FCD value by ~5e-5 rms (bins are 2e-4 wide): the FCD-CDF moves by ~1e-4
// in KS distance, three orders of magnitude below the scatter between noise realisations.
// The window vectors are first converted into one transposed bfloat16 layout per simulation
// (16 x 16 word blocks); then work items (simulation, block of RB rows) run 4 x 96 register
// tiles over all pairs of elements, largest blocks first.
#if defined(__AVX512BF16__) && defined(__AVX512F__)
#define HAVE_BF16_FCD 1
namespace fcd_bf16 {
constexpr int64_t MR = 4, NR = 96, NV = NR / 16, RB = 96, KB = 16;

// Transposed bfloat16 layout of one simulation's window vectors v (W x P float32), in panels of
// NR rows: word at(k, j) holds elements 2k, 2k + 1 of row j (low half 2k), rounded to nearest
// even; zero beyond W and P. Both operands of the Gram matrix read it: a row tile broadcasts
// at(k, i .. i + MR), a column tile loads the NR consecutive words at(k, c0 ..) of its panel;
// each streams through one contiguous panel (NR words per pair index k).
struct Layout {
  int64_t W, P, P2, panel, words;
  Layout(int64_t W_, int64_t P_) : W(W_), P(P_) {
    P2 = ((P + 1) / 2 + KB - 1) / KB * KB;
    panel = P2 * NR;
    words = (W + NR - 1) / NR * panel;
  }
  int64_t at(int64_t k, int64_t j) const { return j / NR * panel + k * NR + j % NR; }
};

// rows j0 .. j0 + 15 of v, pairs k0 .. k0 + 15: convert and transpose a 16 x 16 block of words
INL void pack_block(const float *v, const Layout &L, int64_t j0, int64_t k0, uint32_t *vt) {
  __m512i r[16], t[16];
  const int64_t e0 = 2 * k0;
  const __mmask16 m_lo = e0 >= L.P ? 0 : (e0 + 16 <= L.P ? 0xFFFF : (__mmask16)((1u << (L.P - e0)) - 1));
  const __mmask16 m_hi = e0 + 16 >= L.P ? 0 : (e0 + 32 <= L.P ? 0xFFFF : (__mmask16)((1u << (L.P - e0 - 16)) - 1));
  for (int jj = 0; jj < 16; ++jj) {
    if (j0 + jj < L.W) {
      const float *row = v + (j0 + jj) * L.P + e0;
      const __m512 lo = _mm512_maskz_loadu_ps(m_lo, row), hi = _mm512_maskz_loadu_ps(m_hi, row + 16);
      r[jj] = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);  // bf16 elements e0 .. e0 + 31 in order
    } else {
      r[jj] = _mm512_setzero_si512();
    }
  }
  for (int i = 0; i < 8; ++i) {  // 16 x 16 transpose of 32-bit words
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i + 0], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i + 0], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int m = 0; m < 4; ++m) {
    const __m512i a0 = _mm512_shuffle_i32x4(r[m], r[4 + m], 0x88), a1 = _mm512_shuffle_i32x4(r[m], r[4 + m], 0xDD),
                  a2 = _mm512_shuffle_i32x4(r[8 + m], r[12 + m], 0x88),
                  a3 = _mm512_shuffle_i32x4(r[8 + m], r[12 + m], 0xDD);
    _mm512_storeu_si512(vt + L.at(k0 + 0 + m, j0), _mm512_shuffle_i32x4(a0, a2, 0x88));
    _mm512_storeu_si512(vt + L.at(k0 + 4 + m, j0), _mm512_shuffle_i32x4(a1, a3, 0x88));
    _mm512_storeu_si512(vt + L.at(k0 + 8 + m, j0), _mm512_shuffle_i32x4(a0, a2, 0xDD));
    _mm512_storeu_si512(vt + L.at(k0 + 12 + m, j0), _mm512_shuffle_i32x4(a1, a3, 0xDD));
  }
}

// C (MR x NR) = rows i0 .. i0 + MR times columns c0 .. c0 + NR of the Gram matrix
static void tile(const uint32_t *vt, const Layout &L, int64_t i0, int64_t c0, float *C) {
  __m512 c[MR][NV];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 6
    for (int j = 0; j < NV; ++j) c[r][j] = _mm512_setzero_ps();
  const uint32_t *a = vt + L.at(0, i0), *b = vt + L.at(0, c0);
  for (int64_t k = 0; k < L.P2; ++k, a += NR, b += NR) {
    __m512bh bv[NV];
#pragma GCC unroll 6
    for (int j = 0; j < NV; ++j) bv[j] = (__m512bh)_mm512_loadu_si512(b + 16 * j);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m512bh ar = (__m512bh)_mm512_set1_epi32((int)a[r]);
#pragma GCC unroll 6
      for (int j = 0; j < NV; ++j) c[r][j] = _mm512_dpbf16_ps(c[r][j], ar, bv[j]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 6
    for (int j = 0; j < NV; ++j) _mm512_storeu_ps(C + r * NR + 16 * j, c[r][j]);
}

// entries (i, j), j > i, of rows r0 .. r1 of one simulation's FCD, counted into cnt
static void rows(const uint32_t *vt, const Layout &L, int64_t r0, int64_t r1, int64_t bins,
                 float *C, int64_t *cnt, int64_t &lo, int64_t &hi) {
  const double half = 0.5 * (double)bins;
  for (int64_t c0 = r0 / NR * NR; c0 < L.W; c0 += NR) {
    for (int64_t i0 = r0; i0 < r1; i0 += MR) {
      if (c0 + NR - 1 <= i0) continue;  // no column of this tile lies right of the diagonal
      tile(vt, L, i0, c0, C);
      for (int64_t r = 0; r < MR && i0 + r < r1; ++r) {
        const int64_t i = i0 + r, j_end = c0 + NR < L.W ? c0 + NR : L.W;
        for (int64_t j = (i + 1 > c0 ? i + 1 : c0); j < j_end; ++j) {
          const int64_t idx = fcd_bin((double)C[r * NR + (j - c0)], half, bins);
          if (idx < 0) continue;  // NaN input: the caller sees a short total
          cnt[idx] += 1;
          lo = idx < lo ? idx : lo;
          hi = idx > hi ? idx : hi;
        }
      }
    }
  }
}

// vt: scratch of S * Layout(W, P).words words
static void hist(int64_t S, int64_t W, int64_t P, const float *v, int64_t bins, int64_t *counts,
                 uint32_t *vt, int64_t n_threads) {
  const Layout L(W, P);
  const int64_t jb = L.words / L.panel * NR / 16, kb = L.P2 / KB;
  parallel(S * jb, n_threads, [&](int64_t t) {  // pack: (simulation, 16 rows) per task
    const int64_t s = t / jb, j0 = (t % jb) * 16;
    uint32_t *out = vt + s * L.words;
    for (int64_t k = 0; k < kb; ++k) pack_block(v + s * W * P, L, j0, k * KB, out);
  });
  const int64_t n_blocks = (W + RB - 1) / RB;
  parallel(S * n_blocks, n_threads, [&](int64_t t) {  // Gram rows: largest blocks first
    thread_local std::vector<int64_t> cnt;
    thread_local std::vector<float> C;
    if ((int64_t)cnt.size() != bins) cnt.assign(bins, 0);
    if (C.size() != (size_t)(MR * NR)) C.resize(MR * NR);
    const int64_t blk = t / S, s = t % S;
    int64_t lo = bins, hi = -1;
    const int64_t r0 = blk * RB, r1 = r0 + RB < W ? r0 + RB : W;
    rows(vt + s * L.words, L, r0, r1, bins, C.data(), cnt.data(), lo, hi);
    for (int64_t b = lo; b <= hi; ++b) {
      if (cnt[b]) __atomic_fetch_add(counts + s * bins + b, cnt[b], __ATOMIC_RELAXED);
      cnt[b] = 0;
    }
  });
}
}  // namespace fcd_bf16
#endif

extern "C" {
// lanes: simulations per SIMD group (16 or 32 in float32; 8 or 16 in float64); -1 otherwise.
// (8 float32 lanes would fill half a 512-bit register at twice the cost per simulation.)
int pfic_run_f32(const Args *a, const Consts *k, int64_t lanes) {
  switch (lanes) {
    case 16: return run<float, 16>(a, k);
    case 32: return run<float, 32>(a, k);
    default: return -1;
  }
}
int pfic_run_f64(const Args *a, const Consts *k, int64_t lanes) {
  switch (lanes) {
    case 8: return run<double, 8>(a, k);
    case 16: return run<double, 16>(a, k);
    default: return -1;
  }
}
int pfic_abi_version() { return 5; }
// FCD histogram with bfloat16 products (see fcd_bf16 above); returns -1 when the library was built
// without AVX512-BF16 (then the caller uses the float32 products)
// (scratch: pfic_fcd_bf16_scratch_words(W, P) words per simulation)
int64_t pfic_fcd_bf16_scratch_words(int64_t W, int64_t P) {
#ifdef HAVE_BF16_FCD
  return fcd_bf16::Layout(W, P).words;
#else
  (void)W, (void)P;
  return -1;
#endif
}
int pfic_fcd_hist_bf16(int64_t S, int64_t W, int64_t P, const float *v, int64_t bins,
                       int64_t *counts, uint32_t *scratch, int64_t nt) {
#ifdef HAVE_BF16_FCD
  fcd_bf16::hist(S, W, P, v, bins, counts, scratch, nt);
  return 0;
#else
  (void)S, (void)W, (void)P, (void)v, (void)bins, (void)counts, (void)scratch, (void)nt;
  return -1;
#endif
}
// Philox4x32-10 of 16 lanes (lane l: counter word c2 + l) for tests: out[word][lane];
// generic != 0 runs the reference loop instead of the vectorised path
void pfic_philox16(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                   int32_t generic, uint32_t *out) {
  if (generic)
    philox_generic<16>(c0, c1, c2, c3, k0, k1, out, out + 16, out + 32, out + 48);
  else
    philox_lanes<16>(c0, c1, c2, c3, k0, k1, out, out + 16, out + 32, out + 48);
}
void pfic_window_fc_f32(int64_t S, int64_t T, int64_t N, int64_t w, const float *x, float *out,
                        int64_t nt) { window_fc<float, float>(S, T, N, w, x, out, nt); }
void pfic_window_fc_f64(int64_t S, int64_t T, int64_t N, int64_t w, const double *x, double *out,
                        int64_t nt) { window_fc<double, double>(S, T, N, w, x, out, nt); }
void pfic_hist_upper_f32(int64_t S, int64_t b, int64_t c, const float *block, int64_t bins,
                         int64_t *counts, int64_t nt) {
  hist_upper<float>(S, b, c, block, bins, counts, nt);
}
void pfic_hist_upper_f64(int64_t S, int64_t b, int64_t c, const double *block, int64_t bins,
                         int64_t *counts, int64_t nt) {
  hist_upper<double>(S, b, c, block, bins, counts, nt);
}
// elementwise helpers, exposed for tests of the math functions
void pfic_math_f32(int64_t n, const float *x, float *e, float *em1, float *lg) {
  for (int64_t i = 0; i < n; ++i) { e[i] = fexp(x[i]); em1[i] = fexpm1(x[i]); lg[i] = flog(x[i]); }
}
void pfic_math_f64(int64_t n, const double *x, double *e, double *em1, double *lg) {
  for (int64_t i = 0; i < n; ++i) { e[i] = fexp(x[i]); em1[i] = fexpm1(x[i]); lg[i] = flog(x[i]); }
}
void pfic_normals_f32(uint64_t seed, int64_t n, float *out) {
  for (int64_t k = 0; k < n; ++k) {
    float zz[4][16];
    normals_lanes<float, 16>(0u, (uint32_t)k, 0u, (uint32_t)seed, (uint32_t)(seed >> 32), zz);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 16; ++l) out[(k * 4 + c) * 16 + l] = zz[c][l];
  }
}
}
