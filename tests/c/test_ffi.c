/*
 * test_ffi.c: tests of libomni's C API (include/omni.h), run by scripts/test_c.sh.
 *
 *   test_ffi [GROUP...] [--model DIR] [--vocoder DIR] [--wav FILE]
 *
 * Groups (default: all): misuse (NULL for every pointer argument, struct sizes, bad options, zero-length,
 * huge and NaN pushes, sample rates 0 and 7 Hz, double end-turn, cancel with nothing running,
 * free(NULL); model loading: a working directory holding a bogus speech_encoder.pt, configs that cannot
 * work, missing files, a progress callback whose omni call fails, a 1 MiB device string; omni_audio_read), turn (a full turn producing events, cancel, events outliving their session), threads (two
 * sessions on one model driven from two pthreads, plus push and poll on different threads), orphan (a
 * session that outlives omni_model_free). Paths default to the demo model, relative to the repo root.
 * Ends with "N passed, N failed"; exit status 1 on any failure.
 */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* realpath, mkdtemp, symlink */
#endif
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "omni.h"
#include "wav.h"

static int g_passed, g_failed;
static pthread_mutex_t g_count_lock = PTHREAD_MUTEX_INITIALIZER;

static void record(int ok, const char *file, int line, const char *what) {
    pthread_mutex_lock(&g_count_lock);
    if (ok) {
        g_passed++;
    } else {
        g_failed++;
        fprintf(stderr, "FAIL %s:%d: %s (last error: \"%s\")\n", file, line, what, omni_last_error());
    }
    pthread_mutex_unlock(&g_count_lock);
}

#define CHECK(cond) record(!!(cond), __FILE__, __LINE__, #cond)
/* A call returning `expected`, with a message exactly when it failed. */
#define CHECK_ST(call, expected)                                                                         \
    do {                                                                                                 \
        OmniStatus st_ = (call);                                                                         \
        int ok_ = st_ == (expected) && ((expected) == OMNI_OK) == (omni_last_error()[0] == '\0');        \
        if (!ok_)                                                                                        \
            fprintf(stderr, "  %s -> %s, expected %s\n", #call, omni_status_str(st_),                    \
                    omni_status_str(expected));                                                          \
        record(ok_, __FILE__, __LINE__, #call);                                                          \
    } while (0)

static const char *g_model_dir = "tests/fixtures/omni_tiny";
static const char *g_vocoder_dir = "tests/fixtures/vocoder/tiny";
static const char *g_wav = "tests/fixtures/speech/question.wav";
static int16_t *g_pcm;
static size_t g_pcm_n;
static uint32_t g_rate;
/* Poll timeout for one event: generous, valgrind is slow. */
#define POLL_MS 300000

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- helpers */

static OmniModel *load_model(void);

static OmniSession *new_session(OmniModel *m, uint32_t max_new_tokens) {
    OmniSessionOptions so = {.struct_size = sizeof so};
    CHECK_ST(omni_session_options_default(m, &so), OMNI_OK);
    so.max_new_tokens = max_new_tokens;
    so.endpointing = 0; /* the tests end turns themselves */
    so.barge_in = 0;
    OmniSession *s = NULL;
    CHECK_ST(omni_session_new(m, &so, &s), OMNI_OK);
    CHECK(s != NULL);
    return s;
}

/* Pushes `ms` of silence (16 kHz). */
static int push_silence(OmniSession *s, int ms) {
    static const int16_t zeros[320];
    for (int t = 0; t < ms; t += 20) {
        OmniStatus st = omni_session_push_i16(s, zeros, 320, 16000);
        if (st != OMNI_OK) return st;
    }
    return OMNI_OK;
}

/* Pushes the question WAV in 20 ms chunks. */
static int push_question(OmniSession *s) {
    size_t chunk = g_rate / 50;
    for (size_t off = 0; off < g_pcm_n; off += chunk) {
        size_t len = g_pcm_n - off < chunk ? g_pcm_n - off : chunk;
        OmniStatus st = omni_session_push_i16(s, g_pcm + off, len, g_rate);
        if (st != OMNI_OK) return st;
    }
    return OMNI_OK;
}

typedef struct {
    int text_events, audio_events, unit_events, turn_started, no_speech_errors, other_errors;
    int interrupted, interrupt_reason, done, seq_ok, audio_ok;
    size_t pcm_samples, units;
    uint32_t turn;
    char text[8192];
    OmniTimings timings;
} TurnResult;

/* Polls until TURN_DONE / INTERRUPTED (or a non-recoverable error, more NO_SPEECH errors than
 * `no_speech_ok`, or a timeout). If cancel_after_text, cancels when the first text arrives. */
static void run_turn(OmniSession *s, TurnResult *r, int cancel_after_text, int no_speech_ok) {
    memset(r, 0, sizeof *r);
    r->seq_ok = r->audio_ok = 1;
    uint32_t next_seq = 0;
    for (;;) {
        OmniEvent *ev = (OmniEvent *)(uintptr_t)0x1; /* must be overwritten */
        OmniStatus st = omni_session_poll(s, POLL_MS, &ev);
        if (st != OMNI_OK || ev == NULL) {
            fprintf(stderr, "  poll: %s, event %p: %s\n", omni_status_str(st), (void *)ev, omni_last_error());
            CHECK(!"poll gave an event before the timeout");
            return;
        }
        CHECK(ev->struct_size == sizeof(OmniEvent));
        switch (ev->type) {
        case OMNI_EVENT_TURN_STARTED:
            r->turn_started++;
            r->turn = ev->turn;
            break;
        case OMNI_EVENT_TEXT:
            r->text_events++;
            if (!ev->text || strlen(ev->text) != ev->text_len) r->seq_ok = 0;
            if (cancel_after_text && r->text_events == 1) CHECK_ST(omni_session_cancel(s), OMNI_OK);
            break;
        case OMNI_EVENT_UNITS:
            r->unit_events++;
            r->units += ev->n_units;
            if (ev->n_units > 0 && ev->units == NULL) r->seq_ok = 0;
            break;
        case OMNI_EVENT_AUDIO:
            r->audio_events++;
            if (ev->seq != next_seq++) r->seq_ok = 0;
            if (ev->sample_rate != 16000 || ev->n_pcm == 0 || ev->pcm == NULL) r->audio_ok = 0;
            for (size_t i = 0; i < ev->n_pcm; i++)
                if (!isfinite(ev->pcm[i]) || fabsf(ev->pcm[i]) > 1.0f) r->audio_ok = 0;
            r->pcm_samples += ev->n_pcm;
            break;
        case OMNI_EVENT_TURN_DONE:
        case OMNI_EVENT_INTERRUPTED:
            if (ev->type == OMNI_EVENT_TURN_DONE) {
                r->done = 1;
                r->timings = ev->timings;
            } else {
                r->interrupted = 1;
                r->interrupt_reason = ev->interrupt_reason;
                CHECK(ev->timings.total_ms == -1.0);
            }
            CHECK(ev->turn == r->turn);
            CHECK(ev->text != NULL && strlen(ev->text) == ev->text_len);
            if (ev->text) snprintf(r->text, sizeof r->text, "%s", ev->text);
            omni_event_free(ev);
            return;
        case OMNI_EVENT_ERROR:
            CHECK(ev->message != NULL && ev->message[0] != '\0');
            if (ev->error_code == OMNI_ERROR_NO_SPEECH && ev->recoverable) {
                if (++r->no_speech_errors > no_speech_ok) {
                    fprintf(stderr, "  unexpected NO_SPEECH: %s\n", ev->message ? ev->message : "");
                    omni_event_free(ev);
                    return;
                }
            } else {
                fprintf(stderr, "  error event %d: %s\n", ev->error_code, ev->message ? ev->message : "");
                r->other_errors++;
                if (!ev->recoverable) {
                    omni_event_free(ev);
                    return;
                }
            }
            break;
        default:
            break;
        }
        omni_event_free(ev);
    }
}

/* ---------------------------------------------------------------- misuse */

static void test_no_model(void) {
    CHECK(omni_abi_version() == OMNI_ABI_VERSION);
    CHECK(omni_version() != NULL && strlen(omni_version()) > 0);
    CHECK(!strcmp(omni_status_str(OMNI_ERR_AUDIO), "OMNI_ERR_AUDIO"));
    CHECK(!strcmp(omni_status_str(12345), "OMNI_ERR_UNKNOWN"));
    CHECK(omni_last_error() != NULL);

    /* free(NULL) is a no-op */
    omni_model_free(NULL);
    omni_session_free(NULL);
    omni_event_free(NULL);
    CHECK(1);

    /* model options */
    CHECK_ST(omni_model_options_default(NULL), OMNI_ERR_NULL_ARGUMENT);
    CHECK(strstr(omni_last_error(), "OmniModelOptions") != NULL);
    OmniModelOptions mo = {0};
    CHECK_ST(omni_model_options_default(&mo), OMNI_ERR_STRUCT_SIZE);
    mo.struct_size = sizeof mo - 1;
    CHECK_ST(omni_model_options_default(&mo), OMNI_ERR_STRUCT_SIZE);
    CHECK(strstr(omni_last_error(), "struct_size") != NULL);
    mo.struct_size = sizeof mo;
    CHECK_ST(omni_model_options_default(&mo), OMNI_OK);
    CHECK(mo.struct_size == sizeof mo);
    CHECK(mo.device && !strcmp(mo.device, "cpu"));
    CHECK(mo.dtype == OMNI_DTYPE_F32 && mo.speech_encoder == NULL);

    /* model load: every pointer argument */
    OmniModel *m = (OmniModel *)(uintptr_t)0x1;
    CHECK_ST(omni_model_load(NULL, g_vocoder_dir, &mo, NULL, NULL, &m), OMNI_ERR_NULL_ARGUMENT);
    CHECK(m == NULL);
    CHECK(strstr(omni_last_error(), "model_dir") != NULL);
    m = (OmniModel *)(uintptr_t)0x1;
    CHECK_ST(omni_model_load(g_model_dir, NULL, &mo, NULL, NULL, &m), OMNI_ERR_NULL_ARGUMENT);
    CHECK(m == NULL);
    CHECK_ST(omni_model_load(g_model_dir, g_vocoder_dir, &mo, NULL, NULL, NULL), OMNI_ERR_NULL_ARGUMENT);
    OmniModelOptions small = mo;
    small.struct_size = 8;
    CHECK_ST(omni_model_load(g_model_dir, g_vocoder_dir, &small, NULL, NULL, &m), OMNI_ERR_STRUCT_SIZE);
    OmniModelOptions bad = mo;
    bad.dtype = 42;
    CHECK_ST(omni_model_load(g_model_dir, g_vocoder_dir, &bad, NULL, NULL, &m), OMNI_ERR_INVALID_ARGUMENT);
    CHECK(strstr(omni_last_error(), "dtype") != NULL);
    /* quantized weights (q8_0 / q4_0) load */
    OmniModelOptions q = mo;
    q.dtype = OMNI_DTYPE_Q8_0;
    OmniModel *mq = NULL;
    CHECK_ST(omni_model_load(g_model_dir, g_vocoder_dir, &q, NULL, NULL, &mq), OMNI_OK);
    CHECK(mq != NULL);
    omni_model_free(mq);
    q.dtype = OMNI_DTYPE_Q4_0;
    mq = NULL;
    CHECK_ST(omni_model_load(g_model_dir, g_vocoder_dir, &q, NULL, NULL, &mq), OMNI_OK);
    CHECK(mq != NULL);
    omni_model_free(mq);
    bad = mo;
    bad.device = "tpu:7";
    CHECK_ST(omni_model_load(g_model_dir, g_vocoder_dir, &bad, NULL, NULL, &m), OMNI_ERR_DEVICE);
    bad.device = "\xff\xfe";
    CHECK_ST(omni_model_load(g_model_dir, g_vocoder_dir, &bad, NULL, NULL, &m), OMNI_ERR_INVALID_ARGUMENT);
    CHECK_ST(omni_model_load("/nonexistent/omni", g_vocoder_dir, &mo, NULL, NULL, &m), OMNI_ERR_IO);
    CHECK(strstr(omni_last_error(), "/nonexistent/omni") != NULL);
    CHECK(m == NULL);
    /* a success clears the message */
    CHECK_ST(omni_model_options_default(&mo), OMNI_OK);
    CHECK(omni_last_error()[0] == '\0');

    /* every session function with a NULL session */
    float f[4] = {0};
    int16_t i16[4] = {0};
    OmniEvent *ev = (OmniEvent *)(uintptr_t)0x1;
    bool busy;
    CHECK_ST(omni_session_push_f32(NULL, f, 4, 16000), OMNI_ERR_NULL_ARGUMENT);
    CHECK_ST(omni_session_push_i16(NULL, i16, 4, 16000), OMNI_ERR_NULL_ARGUMENT);
    CHECK_ST(omni_session_end_turn(NULL), OMNI_ERR_NULL_ARGUMENT);
    CHECK_ST(omni_session_cancel(NULL), OMNI_ERR_NULL_ARGUMENT);
    CHECK_ST(omni_session_reset(NULL), OMNI_ERR_NULL_ARGUMENT);
    CHECK_ST(omni_session_poll(NULL, 0, &ev), OMNI_ERR_NULL_ARGUMENT);
    CHECK(ev == NULL);
    CHECK_ST(omni_session_is_busy(NULL, &busy), OMNI_ERR_NULL_ARGUMENT);
    OmniSessionOptions so = {.struct_size = sizeof so};
    CHECK_ST(omni_session_options_default(NULL, &so), OMNI_ERR_NULL_ARGUMENT);
    OmniSession *s = (OmniSession *)(uintptr_t)0x1;
    CHECK_ST(omni_session_new(NULL, NULL, &s), OMNI_ERR_NULL_ARGUMENT);
    CHECK(s == NULL);
}

static void progress_cb(const char *stage, size_t done, size_t total, void *user_data) {
    int *calls = user_data;
    (*calls)++;
    if (!stage || !stage[0] || done > total) calls[1]++; /* bad report */
}

static OmniModel *load_model(void) {
    int calls[2] = {0, 0};
    OmniModelOptions mo = {.struct_size = sizeof mo};
    CHECK_ST(omni_model_options_default(&mo), OMNI_OK);
    OmniModel *m = NULL;
    CHECK_ST(omni_model_load(g_model_dir, g_vocoder_dir, &mo, progress_cb, calls, &m), OMNI_OK);
    CHECK(m != NULL);
    CHECK(calls[0] >= 4 && calls[1] == 0);
    return m;
}

static void test_session_misuse(OmniModel *m) {
    /* NULL options and NULL progress callback are allowed: defaults, no reports */
    OmniModel *m2 = NULL;
    CHECK_ST(omni_model_load(g_model_dir, g_vocoder_dir, NULL, NULL, NULL, &m2), OMNI_OK);
    CHECK(m2 != NULL);
    omni_model_free(m2);

    /* session options */
    OmniSessionOptions so = {.struct_size = sizeof so};
    CHECK_ST(omni_session_options_default(m, NULL), OMNI_ERR_NULL_ARGUMENT);
    so.struct_size = 4;
    CHECK_ST(omni_session_options_default(m, &so), OMNI_ERR_STRUCT_SIZE);
    so.struct_size = sizeof so;
    CHECK_ST(omni_session_options_default(m, &so), OMNI_OK);
    CHECK(so.max_new_tokens == 256 && so.temperature == 0.0f && so.top_p == 1.0f);
    CHECK(so.first_chunk_units == 10 && so.chunk_units == 40 && so.endpointing && so.barge_in);
    CHECK(so.system_prompt == NULL && so.user_message == NULL && so.max_context > 0 && so.event_capacity > 0);

    /* session_new: pointers and each bad option */
    OmniSession *s = (OmniSession *)(uintptr_t)0x1;
    CHECK_ST(omni_session_new(m, &so, NULL), OMNI_ERR_NULL_ARGUMENT);
    OmniSessionOptions b = so;
    /* Smaller than the first ABI's struct: refused (a struct from an older header is accepted: test_turns). */
    b.struct_size = sizeof(size_t);
    CHECK_ST(omni_session_new(m, &b, &s), OMNI_ERR_STRUCT_SIZE);
    CHECK(s == NULL);
#define BAD_OPTION(field, value)                                                                         \
    do {                                                                                                 \
        b = so;                                                                                          \
        b.field = value;                                                                                 \
        CHECK_ST(omni_session_new(m, &b, &s), OMNI_ERR_INVALID_ARGUMENT);                                \
        CHECK(s == NULL && strstr(omni_last_error(), #field) != NULL);                                   \
    } while (0)
    BAD_OPTION(max_new_tokens, 0);
    BAD_OPTION(temperature, NAN);
    BAD_OPTION(temperature, -1.0f);
    BAD_OPTION(top_p, 0.0f);
    BAD_OPTION(top_p, 1.5f);
    BAD_OPTION(first_chunk_units, 0);
    BAD_OPTION(chunk_units, 0);
    BAD_OPTION(vad_threshold, 2.0f);
    BAD_OPTION(max_context, 0);
    BAD_OPTION(event_capacity, 0);
    BAD_OPTION(system_prompt, "\xc3\x28");
    CHECK_ST(omni_session_new(m, NULL, &s), OMNI_OK); /* NULL options = defaults */
    omni_session_free(s);
    b = so;
    b.system_prompt = "You are terse.";
    s = NULL;
    CHECK_ST(omni_session_new(m, &b, &s), OMNI_OK);
    omni_session_free(s);

    s = new_session(m, 8);
    OmniEvent *ev = NULL;
    bool busy = true;

    /* pushes: NULL, zero-length, huge, NaN, bad rates, misaligned */
    float f[320];
    int16_t i16[320];
    for (int i = 0; i < 320; i++) f[i] = 0.0f, i16[i] = 0;
    CHECK_ST(omni_session_push_f32(s, NULL, 320, 16000), OMNI_ERR_NULL_ARGUMENT);
    CHECK_ST(omni_session_push_i16(s, NULL, 320, 16000), OMNI_ERR_NULL_ARGUMENT);
    CHECK_ST(omni_session_push_f32(s, NULL, 0, 16000), OMNI_OK);
    CHECK_ST(omni_session_push_f32(s, f, 0, 16000), OMNI_OK);
    CHECK_ST(omni_session_push_i16(s, i16, 0, 16000), OMNI_OK);
    CHECK_ST(omni_session_push_f32(s, f, SIZE_MAX, 16000), OMNI_ERR_INVALID_ARGUMENT);
    CHECK_ST(omni_session_push_f32(s, f, SIZE_MAX / 4, 16000), OMNI_ERR_INVALID_ARGUMENT);
    CHECK_ST(omni_session_push_f32(s, f, ((size_t)1 << 28) + 1, 16000), OMNI_ERR_INVALID_ARGUMENT);
    CHECK_ST(omni_session_push_i16(s, i16, SIZE_MAX, 16000), OMNI_ERR_INVALID_ARGUMENT);
    CHECK_ST(omni_session_push_f32(s, NULL, SIZE_MAX, 16000), OMNI_ERR_NULL_ARGUMENT);
    f[100] = NAN;
    CHECK_ST(omni_session_push_f32(s, f, 320, 16000), OMNI_ERR_AUDIO);
    CHECK(strstr(omni_last_error(), "100") != NULL);
    f[100] = INFINITY;
    CHECK_ST(omni_session_push_f32(s, f, 320, 16000), OMNI_ERR_AUDIO);
    f[100] = 0.0f;
    CHECK_ST(omni_session_push_f32(s, f, 320, 0), OMNI_ERR_AUDIO);
    CHECK_ST(omni_session_push_f32(s, f, 320, 7), OMNI_ERR_AUDIO);
    CHECK(strstr(omni_last_error(), "7 Hz") != NULL);
    CHECK_ST(omni_session_push_i16(s, i16, 320, 0), OMNI_ERR_AUDIO);
    CHECK_ST(omni_session_push_i16(s, i16, 320, 7), OMNI_ERR_AUDIO);
    CHECK_ST(omni_session_push_f32(s, f, 320, 400000), OMNI_ERR_AUDIO);
    static float aligned[8];
    CHECK_ST(omni_session_push_f32(s, (const float *)((const char *)aligned + 1), 4, 16000),
             OMNI_ERR_INVALID_ARGUMENT);
    CHECK_ST(omni_session_push_f32(s, f, 320, 16000), OMNI_OK);
    CHECK_ST(omni_session_push_i16(s, i16, 320, 48000), OMNI_OK);

    /* is_busy, cancel with nothing running, poll with nothing queued */
    CHECK_ST(omni_session_is_busy(s, NULL), OMNI_ERR_NULL_ARGUMENT);
    CHECK_ST(omni_session_is_busy(s, &busy), OMNI_OK);
    CHECK(!busy);
    CHECK_ST(omni_session_cancel(s), OMNI_OK);
    CHECK_ST(omni_session_cancel(s), OMNI_OK);
    CHECK_ST(omni_session_poll(s, 0, NULL), OMNI_ERR_NULL_ARGUMENT);
    ev = (OmniEvent *)(uintptr_t)0x1;
    CHECK_ST(omni_session_poll(s, 0, &ev), OMNI_OK);
    CHECK(ev == NULL);
    ev = (OmniEvent *)(uintptr_t)0x1;
    CHECK_ST(omni_session_poll(s, 20, &ev), OMNI_OK);
    CHECK(ev == NULL);

    /* double end-turn with silence only: two NO_SPEECH error events, no API error */
    CHECK_ST(omni_session_end_turn(s), OMNI_OK);
    CHECK_ST(omni_session_end_turn(s), OMNI_OK);
    for (int i = 0; i < 2; i++) {
        ev = NULL;
        CHECK_ST(omni_session_poll(s, 1000, &ev), OMNI_OK);
        CHECK(ev && ev->type == OMNI_EVENT_ERROR && ev->error_code == OMNI_ERROR_NO_SPEECH && ev->recoverable);
        CHECK(ev && ev->message && ev->text == NULL && ev->turn == 0 && ev->timings.total_ms == -1.0);
        omni_event_free(ev);
    }
    ev = (OmniEvent *)(uintptr_t)0x1;
    CHECK_ST(omni_session_poll(s, 0, &ev), OMNI_OK);
    CHECK(ev == NULL);

    /* reset with nothing running, twice */
    CHECK_ST(omni_session_reset(s), OMNI_OK);
    CHECK_ST(omni_session_reset(s), OMNI_OK);
    omni_session_free(s);
}

/* ---------------------------------------------------------------- model loading */

/* A temporary folder (mkdtemp) and the files made in it, removed by tmp_clean. */
typedef struct {
    char dir[64];
    char files[32][PATH_MAX];
    int n;
} TmpDir;

static int tmp_make(TmpDir *t) {
    memset(t, 0, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/omni-test-XXXXXX");
    return mkdtemp(t->dir) != NULL;
}

/* The path of `name` in t (remembered for cleaning). */
static const char *tmp_file(TmpDir *t, const char *name) {
    if (t->n >= 32) return NULL;
    char dir[sizeof t->dir];
    memcpy(dir, t->dir, sizeof dir);
    snprintf(t->files[t->n], PATH_MAX, "%s/%s", dir, name);
    return t->files[t->n++];
}

static void tmp_clean(TmpDir *t) {
    for (int i = 0; i < t->n; i++) unlink(t->files[i]);
    rmdir(t->dir);
}

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t len = strlen(text);
    int ok = fwrite(text, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* A malloc'd copy of a whole file (NUL-terminated), or NULL. */
static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len) {
        buf[len] = '\0';
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* A copy of the model folder in t: every file a symlink to the fixture's, except config.json, written
 * from the fixture's with the value of `key` replaced by `value` (key NULL: unchanged). */
static int copy_model(TmpDir *t, const char *key, const char *value) {
    char src[PATH_MAX];
    if (!realpath(g_model_dir, src)) return 0;
    DIR *d = opendir(src);
    if (!d) return 0;
    int ok = 1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "config.json")) continue;
        char from[PATH_MAX + 256];
        snprintf(from, sizeof from, "%s/%s", src, e->d_name);
        const char *to = tmp_file(t, e->d_name);
        if (!to || symlink(from, to) != 0) ok = 0;
    }
    closedir(d);
    char cfg_path[PATH_MAX + 16];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", src);
    char *cfg = read_file(cfg_path);
    if (!cfg) return 0;
    const char *out = tmp_file(t, "config.json");
    if (key) {
        char quoted[128];
        snprintf(quoted, sizeof quoted, "\"%s\":", key);
        char *at = strstr(cfg, quoted);
        if (!at) {
            free(cfg);
            return 0;
        }
        char *v = at + strlen(quoted);
        char *end = v + strspn(v, " ");
        if (*end == '"') { /* a string value: up to its closing quote */
            char *close = strchr(end + 1, '"');
            end = close ? close + 1 : end;
        } else {
            end += strcspn(end, ",\n}");
        }
        size_t n = strlen(cfg) + strlen(value) + 8;
        char *edited = malloc(n);
        snprintf(edited, n, "%.*s %s%s", (int)(v - cfg), cfg, value, end);
        free(cfg);
        cfg = edited;
    }
    ok = ok && out && write_file(out, cfg);
    free(cfg);
    return ok;
}

static void progress_with_failing_call(const char *stage, size_t done, size_t total, void *user_data) {
    (void)stage, (void)done, (void)total;
    int *calls = user_data;
    /* An omni call that fails, made while omni_model_load runs: it sets this thread's message. */
    if (omni_model_options_default(NULL) == OMNI_ERR_NULL_ARGUMENT) (*calls)++;
}

static void test_model_load_misuse(void) {
    OmniModelOptions mo = {.struct_size = sizeof mo};
    CHECK_ST(omni_model_options_default(&mo), OMNI_OK);
    char model_abs[PATH_MAX], vocoder_abs[PATH_MAX], cwd[PATH_MAX];
    CHECK(realpath(g_model_dir, model_abs) != NULL && realpath(g_vocoder_dir, vocoder_abs) != NULL);
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    OmniModel *m = NULL;

    /* The working directory does not shadow the model's files: a bogus speech_encoder.pt in the cwd
     * (the config names "speech_encoder.pt") is not what loads. */
    TmpDir t;
    CHECK(tmp_make(&t));
    const char *bogus = tmp_file(&t, "speech_encoder.pt");
    CHECK(bogus && write_file(bogus, "not a checkpoint"));
    CHECK(chdir(t.dir) == 0);
    CHECK_ST(omni_model_load(model_abs, vocoder_abs, &mo, NULL, NULL, &m), OMNI_OK);
    CHECK(m != NULL);
    omni_model_free(m);
    m = NULL;
    CHECK(chdir(cwd) == 0);
    tmp_clean(&t);

    /* A successful load leaves no message, even when its progress callback made a failing omni call. */
    int calls = 0;
    CHECK_ST(omni_model_load(g_model_dir, g_vocoder_dir, &mo, progress_with_failing_call, &calls, &m), OMNI_OK);
    CHECK(calls >= 4);
    CHECK(omni_last_error()[0] == '\0');
    omni_model_free(m);
    m = NULL;

    /* Missing files are OMNI_ERR_IO, whichever file it is. */
    OmniModelOptions se = mo;
    se.speech_encoder = "/nonexistent/whisper.pt";
    CHECK_ST(omni_model_load(g_model_dir, g_vocoder_dir, &se, NULL, NULL, &m), OMNI_ERR_IO);
    CHECK(m == NULL && strstr(omni_last_error(), "/nonexistent/whisper.pt") != NULL);
    se.speech_encoder = "";
    CHECK_ST(omni_model_load(g_model_dir, g_vocoder_dir, &se, NULL, NULL, &m), OMNI_ERR_IO);
    se.speech_encoder = g_model_dir; /* a folder, not a file */
    CHECK_ST(omni_model_load(g_model_dir, g_vocoder_dir, &se, NULL, NULL, &m), OMNI_ERR_IO);
    CHECK_ST(omni_model_load(g_model_dir, "/nonexistent/vocoder", &mo, NULL, NULL, &m), OMNI_ERR_IO);
    /* ... and a present but malformed one is OMNI_ERR_MODEL. */
    CHECK(tmp_make(&t));
    bogus = tmp_file(&t, "whisper.pt");
    CHECK(bogus && write_file(bogus, "not a checkpoint"));
    se.speech_encoder = bogus;
    CHECK_ST(omni_model_load(g_model_dir, g_vocoder_dir, &se, NULL, NULL, &m), OMNI_ERR_MODEL);
    tmp_clean(&t);

    /* Configs that cannot work are refused at load, naming the field. */
    static const struct {
        const char *key, *value, *named;
    } absurd[] = {
        {"max_position_embeddings", "0", "max_position_embeddings"},
        {"num_hidden_layers", "0", "num_hidden_layers"},
        {"hidden_size", "0", "hidden_size"},
        {"hidden_size", "66", "hidden_size"}, /* not a multiple of 4 heads */
        {"intermediate_size", "0", "intermediate_size"},
        {"num_attention_heads", "0", "num_attention_heads"},
        {"num_key_value_heads", "3", "num_key_value_heads"}, /* does not divide 4 heads */
        {"vocab_size", "0", "vocab_size"},
        {"unit_vocab_size", "0", "unit_vocab_size"},
        {"ctc_upsample_factor", "0", "ctc_upsample_factor"},
        {"speech_encoder_ds_rate", "0", "speech_encoder_ds_rate"},
        {"rms_norm_eps", "-1.0", "rms_norm_eps"},
        {"ctc_decoder_config", "\"(2,0,4,160)\"", "ctc_decoder_config"},
    };
    for (size_t i = 0; i < sizeof absurd / sizeof absurd[0]; i++) {
        CHECK(tmp_make(&t));
        CHECK(copy_model(&t, absurd[i].key, absurd[i].value));
        m = (OmniModel *)(uintptr_t)0x1;
        CHECK_ST(omni_model_load(t.dir, g_vocoder_dir, &mo, NULL, NULL, &m), OMNI_ERR_MODEL);
        CHECK(m == NULL);
        if (!strstr(omni_last_error(), absurd[i].named))
            fprintf(stderr, "  %s = %s: message does not name it: %s\n", absurd[i].key, absurd[i].value,
                    omni_last_error());
        CHECK(strstr(omni_last_error(), absurd[i].named) != NULL);
        tmp_clean(&t);
    }
    /* The copy itself loads: the refusals above are the edited field's. */
    CHECK(tmp_make(&t));
    CHECK(copy_model(&t, NULL, NULL));
    m = NULL;
    CHECK_ST(omni_model_load(t.dir, g_vocoder_dir, &mo, NULL, NULL, &m), OMNI_OK);
    omni_model_free(m);
    tmp_clean(&t);

    /* Echoed input is cut: a 1 MiB device string gives a short message. */
    size_t big = (size_t)1 << 20;
    char *device = malloc(big + 1);
    memset(device, 'x', big);
    device[big] = '\0';
    OmniModelOptions dev = mo;
    dev.device = device;
    m = (OmniModel *)(uintptr_t)0x1;
    CHECK_ST(omni_model_load(g_model_dir, g_vocoder_dir, &dev, NULL, NULL, &m), OMNI_ERR_DEVICE);
    CHECK(m == NULL);
    CHECK(strlen(omni_last_error()) < 512);
    CHECK(strstr(omni_last_error(), "(1048576 bytes)") != NULL);
    /* ... and a 1 MiB path too (the OS refuses it: OMNI_ERR_IO). */
    device[0] = '/';
    CHECK_ST(omni_model_load(device, g_vocoder_dir, &mo, NULL, NULL, &m), OMNI_ERR_IO);
    CHECK(strlen(omni_last_error()) < 2048);
    free(device);
}

/* omni_audio_read: the FLAC copy of the question gives the WAV's samples; errors have their statuses. */
static void test_audio_read(void) {
    OmniAudio *a = (OmniAudio *)(uintptr_t)0x1;
    CHECK_ST(omni_audio_read(NULL, &a), OMNI_ERR_NULL_ARGUMENT);
    CHECK(a == NULL);
    CHECK_ST(omni_audio_read("tests/fixtures/speech/question.flac", NULL), OMNI_ERR_NULL_ARGUMENT);
    CHECK_ST(omni_audio_read("/nonexistent/question.flac", &a), OMNI_ERR_IO);
    CHECK_ST(omni_audio_read("tests/fixtures/speech/question.opus", &a), OMNI_ERR_AUDIO);
    CHECK(a == NULL && strstr(omni_last_error(), "Opus") != NULL);
    CHECK_ST(omni_audio_read("tests/fixtures/omni_tiny/config.json", &a), OMNI_ERR_AUDIO);
    omni_audio_free(NULL);
    CHECK_ST(omni_audio_read("tests/fixtures/speech/question.flac", &a), OMNI_OK);
    if (a) {
        CHECK(a->struct_size == sizeof(OmniAudio) && a->sample_rate == g_rate && a->n_samples == g_pcm_n);
        size_t same = 0;
        for (size_t i = 0; i < a->n_samples && i < g_pcm_n; i++)
            if (a->samples[i] == (float)g_pcm[i] / 32768.0f) same++;
        CHECK(same == g_pcm_n);
        omni_audio_free(a);
    }
}

/* ---------------------------------------------------------------- turns */

static void test_full_turn(OmniModel *m) {
    OmniSession *s = new_session(m, 24);
    double t0 = now_s();
    CHECK_ST(push_question(s), OMNI_OK);
    CHECK_ST(omni_session_end_turn(s), OMNI_OK);
    CHECK_ST(omni_session_end_turn(s), OMNI_OK); /* double end-turn: the second turn is empty */
    TurnResult r;
    run_turn(s, &r, 0, 1);
    fprintf(stderr, "  full turn: %.1f s, %d text, %d units events (%zu units), %d audio (%zu samples): \"%.60s\"\n",
            now_s() - t0, r.text_events, r.unit_events, r.units, r.audio_events, r.pcm_samples, r.text);
    CHECK(r.done && !r.interrupted && r.turn == 1 && r.turn_started == 1);
    CHECK(r.no_speech_errors == 1 && r.other_errors == 0);
    CHECK(r.text_events >= 1 && r.text_events <= 24);
    CHECK(r.audio_events >= 1 && r.audio_ok && r.seq_ok && r.pcm_samples > 0);
    CHECK(r.timings.total_ms > 0 && r.timings.encode_ms >= 0 && r.timings.prefill_ms >= 0);
    CHECK(r.timings.tokens == r.text_events && r.timings.units == (int64_t)r.units);
    CHECK(r.timings.first_text_ms >= 0 && r.timings.first_audio_ms >= r.timings.first_text_ms);

    /* second turn on the same session, cancelled at its first text. The silence first lets the voice
     * detector leave its speech state (with endpointing off, a turn ended by end_turn while the detector
     * is still in speech is only "heard" after a new speech onset). */
    CHECK_ST(push_silence(s, 1000), OMNI_OK);
    CHECK_ST(push_question(s), OMNI_OK);
    CHECK_ST(omni_session_end_turn(s), OMNI_OK);
    run_turn(s, &r, 1, 0);
    CHECK(r.turn == 2 && r.other_errors == 0);
    CHECK(r.interrupted || r.done); /* a tiny model may finish before the cancel lands */
    if (r.interrupted) CHECK(r.interrupt_reason == OMNI_INTERRUPT_CANCEL);
    fprintf(stderr, "  cancelled turn: %s after %d text events\n", r.interrupted ? "interrupted" : "done",
            r.text_events);

    /* a third turn leaves events queued; one polled event outlives the session */
    CHECK_ST(omni_session_reset(s), OMNI_OK);
    CHECK_ST(push_question(s), OMNI_OK);
    CHECK_ST(omni_session_end_turn(s), OMNI_OK);
    OmniEvent *kept = NULL;
    CHECK_ST(omni_session_poll(s, POLL_MS, &kept), OMNI_OK);
    CHECK(kept != NULL);
    omni_session_free(s); /* mid-turn: stops the worker, drops queued events */
    if (kept) CHECK(kept->type == OMNI_EVENT_SPEECH_STARTED && kept->turn == 0); /* the detector's */
    omni_event_free(kept);
}

typedef struct {
    OmniModel *model;
    TurnResult result;
    int status;
} ThreadArg;

static void *drive_session(void *p) {
    ThreadArg *a = p;
    OmniSession *s = new_session(a->model, 16);
    a->status = push_question(s);
    if (a->status == OMNI_OK) a->status = omni_session_end_turn(s);
    if (a->status == OMNI_OK) run_turn(s, &a->result, 0, 0);
    omni_session_free(s);
    return NULL;
}

typedef struct {
    OmniSession *session;
    int status;
} PushArg;

static void *push_thread(void *p) {
    PushArg *a = p;
    a->status = push_question(a->session);
    if (a->status == OMNI_OK) a->status = omni_session_end_turn(a->session);
    return NULL;
}

static void test_threads(OmniModel *m) {
    /* two sessions on one model, each driven from its own thread */
    ThreadArg a[2] = {{.model = m}, {.model = m}};
    pthread_t t[2];
    double t0 = now_s();
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, drive_session, &a[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    fprintf(stderr, "  two threads: %.1f s\n", now_s() - t0);
    for (int i = 0; i < 2; i++) {
        CHECK(a[i].status == OMNI_OK);
        CHECK(a[i].result.done && a[i].result.audio_events >= 1 && a[i].result.other_errors == 0);
    }
    /* greedy decoding: the same question gives the same answer in both sessions */
    CHECK(!strcmp(a[0].result.text, a[1].result.text));
    CHECK(a[0].result.pcm_samples == a[1].result.pcm_samples);

    /* one session: pushes from one thread while this one polls */
    OmniSession *s = new_session(m, 16);
    PushArg pa = {.session = s};
    pthread_t pt;
    CHECK(pthread_create(&pt, NULL, push_thread, &pa) == 0);
    TurnResult r;
    run_turn(s, &r, 0, 0);
    pthread_join(pt, NULL);
    CHECK(pa.status == OMNI_OK && r.done && !strcmp(r.text, a[0].result.text));
    omni_session_free(s);
}

static void test_orphan_session(void) {
    OmniModel *m = load_model();
    OmniSession *s = new_session(m, 8);
    omni_model_free(m); /* the session keeps the model alive */
    CHECK_ST(push_question(s), OMNI_OK);
    CHECK_ST(omni_session_end_turn(s), OMNI_OK);
    TurnResult r;
    run_turn(s, &r, 0, 0);
    CHECK(r.done && r.other_errors == 0);
    omni_session_free(s);
}

int main(int argc, char **argv) {
    int want_misuse = 0, want_turn = 0, want_threads = 0, want_orphan = 0, any = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) g_model_dir = argv[++i];
        else if (!strcmp(argv[i], "--vocoder") && i + 1 < argc) g_vocoder_dir = argv[++i];
        else if (!strcmp(argv[i], "--wav") && i + 1 < argc) g_wav = argv[++i];
        else if (!strcmp(argv[i], "misuse")) want_misuse = any = 1;
        else if (!strcmp(argv[i], "turn")) want_turn = any = 1;
        else if (!strcmp(argv[i], "threads")) want_threads = any = 1;
        else if (!strcmp(argv[i], "orphan")) want_orphan = any = 1;
        else {
            fprintf(stderr, "usage: %s [misuse] [turn] [threads] [orphan] [--model DIR] [--vocoder DIR] [--wav F]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!any) want_misuse = want_turn = want_threads = want_orphan = 1;
    char err[512];
    if (wav_read(g_wav, &g_pcm, &g_pcm_n, &g_rate, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    double t0 = now_s();
    if (want_misuse) {
        fprintf(stderr, "misuse: no model\n");
        test_no_model();
        fprintf(stderr, "misuse: model loading\n");
        test_model_load_misuse();
        fprintf(stderr, "misuse: audio files\n");
        test_audio_read();
    }
    if (want_misuse || want_turn || want_threads) {
        OmniModel *m = load_model();
        fprintf(stderr, "loaded the model (%.1f s)\n", now_s() - t0);
        if (m) {
            if (want_misuse) {
                fprintf(stderr, "misuse: sessions\n");
                test_session_misuse(m);
            }
            if (want_turn) {
                fprintf(stderr, "turn\n");
                test_full_turn(m);
            }
            if (want_threads) {
                fprintf(stderr, "threads\n");
                test_threads(m);
            }
        }
        omni_model_free(m);
    }
    if (want_orphan) {
        fprintf(stderr, "orphan session\n");
        test_orphan_session();
    }
    free(g_pcm);
    fprintf(stderr, "(%.1f s)\n", now_s() - t0);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
