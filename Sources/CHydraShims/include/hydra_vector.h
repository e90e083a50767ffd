#ifndef HYDRA_VECTOR_H
#define HYDRA_VECTOR_H

// Lane-wise minimum and maximum of eight floats. Swift's SIMD8 pointwiseMin/Max and comparisons
// compile to out-of-line calls and per-lane loops; these inline to one vminps/vmaxps each.
// Swift sees hydra_float8 as SIMD8<Float>.
typedef float hydra_float8 __attribute__((ext_vector_type(8)));

static inline hydra_float8 hydra_clamp8(hydra_float8 x, float lower, float upper) {
    return __builtin_elementwise_min(__builtin_elementwise_max(x, (hydra_float8)lower), (hydra_float8)upper);
}

static inline hydra_float8 hydra_max8(hydra_float8 a, hydra_float8 b) { return __builtin_elementwise_max(a, b); }

#endif
