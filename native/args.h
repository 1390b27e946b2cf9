// The argument checker of addon.cc: every export takes one params object, and Args reads its fields, checking each
// (type, integer range, typed-array kind and exact length) so kernels receive only consistent pointers. A bad
// argument becomes a JS TypeError/RangeError naming the function, the field, what was expected and what came.
// Included by addon.cc only; with it, the only files that see Node-API.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace granq {

constexpr int64_t kMaxDim = int64_t(1) << 40;

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn) : env_(info.Env()), fn_(fn) {
    if (info.Length() != 1 || !info[0].IsObject()) fail_type("(params)", "one params object", describe(info[0]));
    obj_ = info[0].As<Napi::Object>();
  }

  // An integer field in [lo, hi].
  int64_t dim(const char* name, int64_t lo = 1, int64_t hi = kMaxDim) {
    Napi::Value v = obj_.Get(name);
    if (!v.IsNumber()) fail_type(name, "an integer", describe(v));
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d != std::floor(d)) fail_range(name, "an integer", std::to_string(d));
    if (d < double(lo) || d > double(hi))
      fail_range(name, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", std::to_string(d));
    return static_cast<int64_t>(d);
  }

  float num(const char* name) {
    Napi::Value v = obj_.Get(name);
    if (!v.IsNumber()) fail_type(name, "a number", describe(v));
    return v.As<Napi::Number>().FloatValue();
  }

  // Whether an optional field is present (neither undefined nor null).
  bool has(const char* name) {
    Napi::Value v = obj_.Get(name);
    return !v.IsUndefined() && !v.IsNull();
  }

  bool flag(const char* name) {
    Napi::Value v = obj_.Get(name);
    if (!v.IsBoolean()) fail_type(name, "a boolean", describe(v));
    return v.As<Napi::Boolean>().Value();
  }

  float* f32(const char* name, int64_t len) { return f32_impl(name, len, false); }
  float* f32_opt(const char* name, int64_t len) { return f32_impl(name, len, true); }

  // A Float32Array of at least `len` elements (strided reads may end before the array does).
  float* f32_min(const char* name, int64_t len) {
    Napi::TypedArrayOf<float> a = typed_f32(name);
    if (int64_t(a.ElementLength()) < len)
      fail_range(name, "a Float32Array of at least " + std::to_string(len) + " elements",
                 std::to_string(a.ElementLength()) + " elements");
    return a.Data();
  }

  int32_t* i32(const char* name, int64_t len) {
    Napi::Value v = obj_.Get(name);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      fail_type(name, "an Int32Array", describe(v));
    auto a = v.As<Napi::TypedArrayOf<int32_t>>();
    if (int64_t(a.ElementLength()) != len)
      fail_range(name, "an Int32Array of " + std::to_string(len) + " elements",
                 std::to_string(a.ElementLength()) + " elements");
    return a.Data();
  }

  uint8_t* u8(const char* name, int64_t len) { return typed<uint8_t>(name, len, napi_uint8_array, "a Uint8Array"); }
  int8_t* s8(const char* name, int64_t len) { return typed<int8_t>(name, len, napi_int8_array, "an Int8Array"); }
  double* f64(const char* name, int64_t len) { return typed<double>(name, len, napi_float64_array, "a Float64Array"); }
  uint8_t* u8_opt(const char* name, int64_t len) { return has(name) ? u8(name, len) : nullptr; }

  // A fixed-length array of integers (shapes and strides).
  void ints4(const char* name, int64_t out[4], int64_t lo) {
    Napi::Value v = obj_.Get(name);
    if (!v.IsArray() || v.As<Napi::Array>().Length() != 4) fail_type(name, "an array of 4 integers", describe(v));
    Napi::Array arr = v.As<Napi::Array>();
    for (uint32_t i = 0; i < 4; ++i) {
      Napi::Value e = arr.Get(i);
      double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : NAN;
      if (!std::isfinite(d) || d != std::floor(d) || d < double(lo) || d > double(kMaxDim))
        fail_range(name, "an array of 4 integers >= " + std::to_string(lo), describe(e) + " at index " + std::to_string(i));
      out[i] = static_cast<int64_t>(d);
    }
  }

  void bools4(const char* name, bool out[4]) {
    Napi::Value v = obj_.Get(name);
    if (!v.IsArray() || v.As<Napi::Array>().Length() != 4) fail_type(name, "an array of 4 booleans", describe(v));
    Napi::Array arr = v.As<Napi::Array>();
    for (uint32_t i = 0; i < 4; ++i) {
      Napi::Value e = arr.Get(i);
      if (!e.IsBoolean()) fail_type(name, "an array of 4 booleans", describe(e) + " at index " + std::to_string(i));
      out[i] = e.As<Napi::Boolean>().Value();
    }
  }

  // Product of dims with an overflow check.
  int64_t prod(std::initializer_list<int64_t> dims) {
    int64_t p = 1;
    for (int64_t d : dims) {
      if (__builtin_mul_overflow(p, d, &p) || p > kMaxDim) fail_range("(shape)", "a product of dims below 2^40", "overflow");
    }
    return p;
  }

  [[noreturn]] void fail(const std::string& what) { throw Napi::RangeError::New(env_, std::string(fn_) + ": " + what); }
  [[noreturn]] void fail_type(const std::string& name, const std::string& expected, const std::string& got) {
    throw Napi::TypeError::New(env_, std::string(fn_) + ": " + name + ": expected " + expected + ", got " + got);
  }
  [[noreturn]] void fail_range(const std::string& name, const std::string& expected, const std::string& got) {
    throw Napi::RangeError::New(env_, std::string(fn_) + ": " + name + ": expected " + expected + ", got " + got);
  }

  Napi::Env env() const { return env_; }

 private:
  static std::string describe(const Napi::Value& v) {
    if (v.IsUndefined()) return "undefined";
    if (v.IsNull()) return "null";
    if (v.IsBoolean()) return "a boolean";
    if (v.IsNumber()) return std::to_string(v.As<Napi::Number>().DoubleValue());
    if (v.IsString()) return "a string";
    if (v.IsTypedArray()) {
      switch (v.As<Napi::TypedArray>().TypedArrayType()) {
        case napi_float32_array: return "a Float32Array";
        case napi_float64_array: return "a Float64Array";
        case napi_int32_array: return "an Int32Array";
        case napi_uint8_array: return "a Uint8Array";
        default: return "another typed array";
      }
    }
    if (v.IsArray()) return "an array";
    return "an object";
  }

  template <typename T>
  T* typed(const char* name, int64_t len, napi_typedarray_type type, const char* what) {
    Napi::Value v = obj_.Get(name);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) fail_type(name, what, describe(v));
    auto a = v.As<Napi::TypedArrayOf<T>>();
    if (int64_t(a.ElementLength()) != len)
      fail_range(name, std::string(what) + " of " + std::to_string(len) + " elements", std::to_string(a.ElementLength()) + " elements");
    return a.Data();
  }

  Napi::TypedArrayOf<float> typed_f32(const char* name) {
    Napi::Value v = obj_.Get(name);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      fail_type(name, "a Float32Array", describe(v));
    return v.As<Napi::TypedArrayOf<float>>();
  }

  float* f32_impl(const char* name, int64_t len, bool optional) {
    Napi::Value v = obj_.Get(name);
    if (optional && (v.IsNull() || v.IsUndefined())) return nullptr;
    Napi::TypedArrayOf<float> a = typed_f32(name);
    if (int64_t(a.ElementLength()) != len)
      fail_range(name, "a Float32Array of " + std::to_string(len) + " elements",
                 std::to_string(a.ElementLength()) + " elements");
    return a.Data();
  }

  Napi::Env env_;
  const char* fn_;
  Napi::Object obj_;
};

}  // namespace granq
