/*
 * wav.h: a tiny WAV reader/writer for the omni C examples and tests (header-only, C99).
 *
 * wav_read():  16-bit PCM WAV (WAVE_FORMAT_PCM or EXTENSIBLE with PCM subformat), any rate, any number
 *              of channels (mixed down to mono). Returns 0 on success, -1 with a message in err.
 * wav_write(): mono float samples in [-1, 1] as a 16-bit PCM WAV. Returns 0 on success, -1 on failure.
 */
#ifndef OMNI_EXAMPLE_WAV_H
#define OMNI_EXAMPLE_WAV_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline uint32_t wav_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint16_t wav_le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Reads `path` into *samples (malloc'd, mono int16; free() it), *n samples at *rate Hz. */
static inline int wav_read(const char *path, int16_t **samples, size_t *n, uint32_t *rate, char *err, size_t errlen) {
    *samples = NULL;
    *n = 0;
    *rate = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return -1;
    }
    unsigned char *buf = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0) len = ftell(f);
    if (len < 12 || fseek(f, 0, SEEK_SET) != 0 || !(buf = malloc((size_t)len)) ||
        fread(buf, 1, (size_t)len, f) != (size_t)len) {
        snprintf(err, errlen, "%s: cannot read (or shorter than a WAV header)", path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    if (memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0) {
        snprintf(err, errlen, "%s: not a RIFF/WAVE file", path);
        free(buf);
        return -1;
    }
    uint16_t channels = 0, bits = 0, format = 0;
    const unsigned char *data = NULL;
    size_t data_len = 0;
    size_t pos = 12;
    while (pos + 8 <= (size_t)len) {
        const unsigned char *id = buf + pos;
        size_t size = wav_le32(buf + pos + 4);
        const unsigned char *body = buf + pos + 8;
        size_t avail = (size_t)len - (pos + 8);
        if (size > avail) size = avail; /* truncated file: take what is there */
        if (memcmp(id, "fmt ", 4) == 0 && size >= 16) {
            format = wav_le16(body);
            channels = wav_le16(body + 2);
            *rate = wav_le32(body + 4);
            bits = wav_le16(body + 14);
            if (format == 0xFFFE && size >= 26) format = wav_le16(body + 24); /* EXTENSIBLE: subformat */
        } else if (memcmp(id, "data", 4) == 0) {
            data = body;
            data_len = size;
        }
        pos += 8 + size + (size & 1);
    }
    if (format != 1 || bits != 16 || channels == 0 || *rate == 0) {
        snprintf(err, errlen, "%s: need 16-bit PCM (format %u, %u bits, %u channels, %u Hz)", path,
                 (unsigned)format, (unsigned)bits, (unsigned)channels, (unsigned)*rate);
        free(buf);
        return -1;
    }
    if (!data) {
        snprintf(err, errlen, "%s: no data chunk", path);
        free(buf);
        return -1;
    }
    size_t frames = data_len / (2u * channels);
    int16_t *out = malloc(frames ? frames * sizeof *out : 1);
    if (!out) {
        snprintf(err, errlen, "%s: out of memory", path);
        free(buf);
        return -1;
    }
    for (size_t i = 0; i < frames; i++) {
        int32_t acc = 0;
        for (uint16_t c = 0; c < channels; c++) acc += (int16_t)wav_le16(data + 2 * (i * channels + c));
        out[i] = (int16_t)(acc / channels);
    }
    free(buf);
    *samples = out;
    *n = frames;
    return 0;
}

static inline void wav_put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* Writes mono float PCM as 16-bit PCM WAV. */
static inline int wav_write(const char *path, const float *pcm, size_t n, uint32_t rate) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned char h[44];
    memcpy(h, "RIFF", 4);
    wav_put32(h + 4, (uint32_t)(36 + 2 * n));
    memcpy(h + 8, "WAVEfmt ", 8);
    wav_put32(h + 16, 16);
    h[20] = 1, h[21] = 0;  /* PCM */
    h[22] = 1, h[23] = 0;  /* mono */
    wav_put32(h + 24, rate);
    wav_put32(h + 28, rate * 2);
    h[32] = 2, h[33] = 0;  /* block align */
    h[34] = 16, h[35] = 0; /* bits */
    memcpy(h + 36, "data", 4);
    wav_put32(h + 40, (uint32_t)(2 * n));
    int ok = fwrite(h, 1, sizeof h, f) == sizeof h;
    for (size_t i = 0; ok && i < n; i++) {
        float x = pcm[i] != pcm[i] ? 0.0f : pcm[i]; /* NaN -> 0 */
        if (x > 1.0f) x = 1.0f;
        if (x < -1.0f) x = -1.0f;
        int16_t s = (int16_t)(x * 32767.0f);
        unsigned char b[2] = {(unsigned char)(s & 0xff), (unsigned char)((uint16_t)s >> 8)};
        ok = fwrite(b, 1, 2, f) == 2;
    }
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

#endif /* OMNI_EXAMPLE_WAV_H */
