/*
 * test_turns.c: turn handling and session life cycle through libomni's C API, run by scripts/test_c.sh
 * (natively, under valgrind and under ASan/UBSan).
 *
 *   test_turns [GROUP...]     groups (default: all): files live lifecycle options
 *
 * files: recorded questions with trailing silence, trailing noise, a 0.9 s pause and leading silence, in
 *   explicit mode: one TURN_DONE each, with audio. live: the paused question with endpointing on is one
 *   answer (no INTERRUPTED); speech over an answer being played still barges in. lifecycle: free with
 *   unpolled answers pending returns, cancel right after end_turn applies, reset cancels queued turns,
 *   text turns, played(). options: absurd options refused at creation, a struct from an older header
 *   accepted, a large push cut where 20 ms pushes are cut.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni.h"
#include "wav.h"

static int g_passed, g_failed;
static void record(int ok, const char *file, int line, const char *what) {
    if (ok) {
        g_passed++;
    } else {
        g_failed++;
        fprintf(stderr, "FAIL %s:%d: %s (last error: \"%s\")\n", file, line, what, omni_last_error());
    }
}
#define CHECK(cond) record(!!(cond), __FILE__, __LINE__, #cond)
#define CHECK_ST(call, expected)                                                                         \
    do {                                                                                                 \
        OmniStatus st_ = (call);                                                                         \
        if (st_ != (expected))                                                                           \
            fprintf(stderr, "  %s -> %s, expected %s\n", #call, omni_status_str(st_),                    \
                    omni_status_str(expected));                                                          \
        record(st_ == (expected), __FILE__, __LINE__, #call);                                            \
    } while (0)

#define POLL_MS 300000
static const char *g_model_dir = "tests/fixtures/omni_tiny";
static const char *g_vocoder_dir = "tests/fixtures/vocoder/tiny";

typedef struct {
    int16_t *pcm;
    size_t n;
    uint32_t rate;
} Clip;

static Clip load_clip(const char *name) {
    char path[256], err[1024];
    Clip c = {0};
    snprintf(path, sizeof path, "tests/fixtures/turns/%s", name);
    if (wav_read(path, &c.pcm, &c.n, &c.rate, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        CHECK(!"clip readable");
    }
    return c;
}

static void push_20ms(OmniSession *s, const Clip *c) {
    size_t chunk = c->rate / 50;
    for (size_t off = 0; off < c->n; off += chunk) {
        size_t len = c->n - off < chunk ? c->n - off : chunk;
        CHECK_ST(omni_session_push_i16(s, c->pcm + off, len, c->rate), OMNI_OK);
    }
}

static OmniSession *session(OmniModel *m, int endpointing, uint32_t capacity) {
    OmniSessionOptions so = {.struct_size = sizeof so};
    CHECK_ST(omni_session_options_default(m, &so), OMNI_OK);
    so.max_new_tokens = 16;
    so.first_chunk_units = 4;
    so.chunk_units = 8;
    so.endpointing = endpointing;
    so.event_capacity = capacity;
    OmniSession *s = NULL;
    CHECK_ST(omni_session_new(m, &so, &s), OMNI_OK);
    return s;
}

typedef struct {
    int done, interrupted, errors, started, audio_events, speech_ended;
    int reasons[8];
    uint64_t pcm;
    uint64_t ended_at[16];
} Tally;

/* Polls until `ends` turn-ending events were seen (or a poll times out). */
static void tally(OmniSession *s, Tally *t, int ends, int timeout_ms) {
    memset(t, 0, sizeof *t);
    while (t->done + t->interrupted + t->errors < ends) {
        OmniEvent *ev = NULL;
        if (omni_session_poll(s, timeout_ms, &ev) != OMNI_OK || !ev) return;
        switch (ev->type) {
        case OMNI_EVENT_TURN_STARTED: t->started++; break;
        case OMNI_EVENT_SPEECH_ENDED:
            if (t->speech_ended < 16) t->ended_at[t->speech_ended] = ev->at_ms;
            t->speech_ended++;
            break;
        case OMNI_EVENT_AUDIO:
            t->audio_events++;
            t->pcm += ev->n_pcm;
            CHECK(ev->sample_rate > 0);
            break;
        case OMNI_EVENT_TEXT:
            CHECK(ev->token != OMNI_NO_TOKEN || ev->text_len > 0);
            break;
        case OMNI_EVENT_TURN_DONE:
            t->done++;
            CHECK(ev->endpoint_wait_ms >= 0.0);
            break;
        case OMNI_EVENT_INTERRUPTED:
            t->interrupted++;
            CHECK(ev->endpoint_wait_ms == -1.0);
            if (ev->interrupt_reason >= 0 && ev->interrupt_reason < 8) t->reasons[ev->interrupt_reason]++;
            break;
        case OMNI_EVENT_ERROR:
            fprintf(stderr, "  error event: %s\n", ev->message ? ev->message : "");
            t->errors++;
            break;
        default: break;
        }
        omni_event_free(ev);
    }
}

/* Polls whatever comes within `quiet_ms` of the previous event. */
static void tally_until_quiet(OmniSession *s, Tally *t, int quiet_ms) {
    memset(t, 0, sizeof *t);
    Tally one;
    for (;;) {
        tally(s, &one, 1, quiet_ms);
        t->done += one.done;
        t->interrupted += one.interrupted;
        t->errors += one.errors;
        t->started += one.started;
        t->pcm += one.pcm;
        for (int i = 0; i < one.speech_ended && t->speech_ended < 16; i++) t->ended_at[t->speech_ended++] = one.ended_at[i];
        for (int i = 0; i < 8; i++) t->reasons[i] += one.reasons[i];
        if (one.done + one.interrupted + one.errors == 0) return;
    }
}

static void test_files(OmniModel *m) {
    const char *names[] = {"trailing_silence.wav", "trailing_noise.wav", "pause_0_9s.wav", "leading_silence.wav"};
    for (int i = 0; i < 4; i++) {
        Clip c = load_clip(names[i]);
        OmniSession *s = session(m, 0, 256);
        push_20ms(s, &c);
        CHECK_ST(omni_session_end_turn(s), OMNI_OK);
        Tally t;
        tally(s, &t, 1, POLL_MS);
        if (t.done != 1) fprintf(stderr, "  %s: not answered\n", names[i]);
        CHECK(t.done == 1 && t.interrupted == 0 && t.errors == 0);
        CHECK(t.pcm > 0);
        omni_session_free(s);
        free(c.pcm);
    }
}

static void test_live(OmniModel *m) {
    Clip c = load_clip("pause_0_9s.wav");
    /* The pause does not split the question: one answer, nothing interrupted. */
    OmniSession *s = session(m, 1, 256);
    CHECK_ST(omni_session_played(s, 1, 0), OMNI_OK); /* nothing of turn 1 played yet */
    push_20ms(s, &c);
    Tally t;
    tally_until_quiet(s, &t, 20000); /* generous: sanitizers slow the model down */
    CHECK(t.done == 1 && t.interrupted == 0 && t.errors == 0);
    CHECK(t.speech_ended == 2);
    omni_session_free(s);
    /* The app played part of turn 1: speech now is a barge-in over it. */
    s = session(m, 1, 4);
    CHECK_ST(omni_session_played(s, 1, 1600), OMNI_OK);
    push_20ms(s, &c);
    tally_until_quiet(s, &t, 20000); /* generous: sanitizers slow the model down */
    CHECK(t.reasons[OMNI_INTERRUPT_BARGE_IN] == 1);
    CHECK(t.done == 1);
    omni_session_free(s);
    free(c.pcm);
}

static void test_lifecycle(OmniModel *m) {
    Clip c = load_clip("trailing_silence.wav");
    /* Free with two committed turns nobody polled: returns (cancels, drains, joins). */
    OmniSession *s = session(m, 0, 2);
    for (int i = 0; i < 2; i++) {
        push_20ms(s, &c);
        CHECK_ST(omni_session_end_turn(s), OMNI_OK);
    }
    omni_session_free(s);
    CHECK(1); /* reached */

    /* Cancel right after end_turn applies to the turn that has not started yet. */
    for (int k = 0; k < 5; k++) {
        s = session(m, 0, 256);
        push_20ms(s, &c);
        CHECK_ST(omni_session_end_turn(s), OMNI_OK);
        bool busy = false;
        CHECK_ST(omni_session_is_busy(s, &busy), OMNI_OK);
        CHECK(busy);
        CHECK_ST(omni_session_cancel(s), OMNI_OK);
        Tally t;
        tally(s, &t, 1, POLL_MS);
        CHECK(t.interrupted == 1 && t.done == 0 && t.reasons[OMNI_INTERRUPT_CANCEL] == 1);
        CHECK_ST(omni_session_is_busy(s, &busy), OMNI_OK);
        CHECK(!busy);
        omni_session_free(s);
    }

    /* Reset cancels queued turns: each ends INTERRUPTED (cancel); the next turn is answered. */
    s = session(m, 0, 2);
    for (int i = 0; i < 2; i++) {
        push_20ms(s, &c);
        CHECK_ST(omni_session_end_turn(s), OMNI_OK);
    }
    CHECK_ST(omni_session_reset(s), OMNI_OK);
    Tally t;
    tally(s, &t, 2, POLL_MS);
    CHECK(t.interrupted == 2 && t.done == 0);
    CHECK_ST(omni_session_push_text(s, "What is the capital of France?"), OMNI_OK);
    tally(s, &t, 1, POLL_MS);
    CHECK(t.done == 1 && t.pcm > 0);
    CHECK_ST(omni_session_push_text(s, NULL), OMNI_ERR_NULL_ARGUMENT);
    CHECK_ST(omni_session_push_text(s, "  "), OMNI_ERR_INVALID_ARGUMENT);
    CHECK_ST(omni_session_push_text(s, "\xff\xfe"), OMNI_ERR_INVALID_ARGUMENT);
    CHECK_ST(omni_session_push_text(NULL, "hi"), OMNI_ERR_NULL_ARGUMENT);
    CHECK_ST(omni_session_played(NULL, 1, 0), OMNI_ERR_NULL_ARGUMENT);
    omni_session_free(s);
    free(c.pcm);
}

static void test_options(OmniModel *m) {
    OmniSessionOptions so = {.struct_size = sizeof so};
    OmniSession *s = NULL;
    CHECK_ST(omni_session_options_default(m, &so), OMNI_OK);
    CHECK(so.resume_grace_ms == 1500 && so.speculative_start == 1);
    OmniSessionOptions bad = so;
    bad.max_new_tokens = 100000;
    CHECK_ST(omni_session_new(m, &bad, &s), OMNI_ERR_INVALID_ARGUMENT);
    CHECK(s == NULL && strstr(omni_last_error(), "max_new_tokens") != NULL);
    bad = so;
    bad.max_new_tokens = UINT32_MAX;
    CHECK_ST(omni_session_new(m, &bad, &s), OMNI_ERR_INVALID_ARGUMENT);
    bad = so;
    bad.max_context = 1;
    CHECK_ST(omni_session_new(m, &bad, &s), OMNI_ERR_INVALID_ARGUMENT);
    CHECK(strstr(omni_last_error(), "max_context") != NULL);
    bad = so;
    bad.max_context = 200;
    CHECK_ST(omni_session_new(m, &bad, &s), OMNI_ERR_INVALID_ARGUMENT);
    bad = so;
    bad.system_prompt = "You answer <speech> questions.";
    CHECK_ST(omni_session_new(m, &bad, &s), OMNI_ERR_INVALID_ARGUMENT);
    CHECK(strstr(omni_last_error(), "system_prompt") != NULL);
    bad = so;
    bad.user_message = "<speech> and <speech>";
    CHECK_ST(omni_session_new(m, &bad, &s), OMNI_ERR_INVALID_ARGUMENT);
    CHECK(strstr(omni_last_error(), "user_message") != NULL);
    size_t big_n = 200 * 1024;
    char *big = malloc(big_n + 1);
    memset(big, 'a', big_n);
    big[big_n] = '\0';
    bad = so;
    bad.system_prompt = big;
    CHECK_ST(omni_session_new(m, &bad, &s), OMNI_ERR_INVALID_ARGUMENT);
    free(big);
    CHECK(s == NULL);

    /* A struct from the first ABI (it ended after event_capacity): accepted, new fields default. */
    OmniSessionOptions old = so;
    old.struct_size = offsetof(OmniSessionOptions, event_capacity) + sizeof(uint32_t);
    old.resume_grace_ms = 7; /* not part of that ABI: must not be read */
    CHECK_ST(omni_session_new(m, &old, &s), OMNI_OK);
    omni_session_free(s);
    s = NULL;
    OmniSessionOptions filled;
    memset(&filled, 0xAB, sizeof filled);
    filled.struct_size = old.struct_size;
    CHECK_ST(omni_session_options_default(m, &filled), OMNI_OK);
    CHECK(filled.event_capacity == so.event_capacity);
    CHECK(filled.resume_grace_ms == 0xABABABABu); /* past the caller's struct: untouched */
    OmniSessionOptions tiny = so;
    tiny.struct_size = 8;
    CHECK_ST(omni_session_new(m, &tiny, &s), OMNI_ERR_STRUCT_SIZE);

    /* One push holding two questions is cut where 20 ms pushes cut it. */
    Clip q = load_clip("trailing_silence.wav"); /* question + 1.5 s silence */
    size_t n2 = 2 * q.n;
    int16_t *two = malloc(n2 * sizeof *two);
    memcpy(two, q.pcm, q.n * sizeof *two);
    memcpy(two + q.n, q.pcm, q.n * sizeof *two);
    Clip both = {two, n2, q.rate};
    uint64_t at_big[2] = {0}, at_small[2] = {0};
    for (int pass = 0; pass < 2; pass++) {
        OmniSessionOptions lo = so;
        lo.max_new_tokens = 8;
        lo.resume_grace_ms = 0;
        lo.barge_in = 0; /* the second question would barge in on the first answer */
        CHECK_ST(omni_session_new(m, &lo, &s), OMNI_OK);
        if (pass == 0) CHECK_ST(omni_session_push_i16(s, two, n2, q.rate), OMNI_OK);
        else push_20ms(s, &both);
        Tally t;
        tally(s, &t, 2, POLL_MS);
        CHECK(t.done == 2 && t.errors == 0);
        CHECK(t.speech_ended == 2);
        for (int i = 0; i < 2; i++) (pass == 0 ? at_big : at_small)[i] = t.ended_at[i];
        omni_session_free(s);
        s = NULL;
    }
    CHECK(at_big[0] == at_small[0] && at_big[1] == at_small[1]);
    free(two);
    free(q.pcm);
}

static int g_log_info, g_log_bad_level;
static void on_log(OmniLogLevel level, const char *message, void *user) {
    CHECK(user == (void *)&g_log_info);
    CHECK(message != NULL);
    if (level == OMNI_LOG_INFO && strstr(message, "loaded") != NULL) g_log_info++;
    if (level < OMNI_LOG_ERROR || level > OMNI_LOG_DEBUG) g_log_bad_level++;
}

int main(int argc, char **argv) {
    int files = 0, live = 0, life = 0, opts = 0, any = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "files")) files = any = 1;
        else if (!strcmp(argv[i], "live")) live = any = 1;
        else if (!strcmp(argv[i], "lifecycle")) life = any = 1;
        else if (!strcmp(argv[i], "options")) opts = any = 1;
        else {
            fprintf(stderr, "usage: %s [files] [live] [lifecycle] [options]\n", argv[0]);
            return 2;
        }
    }
    if (!any) files = live = life = opts = 1;
    /* The library's messages go to the app's log callback (a model load logs at INFO). */
    CHECK_ST(omni_set_log_callback(on_log, 99, &g_log_info), OMNI_ERR_INVALID_ARGUMENT);
    CHECK_ST(omni_set_log_callback(on_log, OMNI_LOG_INFO, &g_log_info), OMNI_OK);
    OmniModelOptions mo = {.struct_size = sizeof mo};
    CHECK_ST(omni_model_options_default(&mo), OMNI_OK);
    OmniModel *m = NULL;
    CHECK_ST(omni_model_load(g_model_dir, g_vocoder_dir, &mo, NULL, NULL, &m), OMNI_OK);
    CHECK(g_log_info == 1 && g_log_bad_level == 0);
    CHECK_ST(omni_set_log_callback(NULL, OMNI_LOG_INFO, NULL), OMNI_OK);
    if (m) {
        if (files) { fprintf(stderr, "files\n"); test_files(m); }
        if (live) { fprintf(stderr, "live\n"); test_live(m); }
        if (life) { fprintf(stderr, "lifecycle\n"); test_lifecycle(m); }
        if (opts) { fprintf(stderr, "options\n"); test_options(m); }
    }
    omni_model_free(m);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
