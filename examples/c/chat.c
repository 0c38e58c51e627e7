/*
 * chat.c: answer one spoken question through libomni's C API.
 *
 *   chat [--model DIR] [--vocoder DIR] [--output answer.wav] [--device cpu] [--dtype f32|f16|bf16] [question]
 *
 * Loads the model, reads the question (WAV, FLAC, MP3 or Ogg Vorbis, with omni_audio_read), streams it
 * into a session in 20 ms chunks (as a microphone would), ends the
 * turn, prints the answer's text as it streams and writes the answer's audio to a WAV.
 * Defaults: the demo model (tests/fixtures/omni_tiny + tests/fixtures/vocoder/tiny, random weights:
 * gibberish by design) and tests/fixtures/speech/question.wav, paths relative to the repository root.
 *
 * Build (see examples/c/Makefile):
 *   cc -std=c11 -O2 -Iinclude examples/c/chat.c -L$CARGO_TARGET_DIR/release -lomni \
 *      -Wl,-rpath,$CARGO_TARGET_DIR/release -o chat
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni.h"
#include "wav.h"

static int fail(const char *what, OmniStatus st) {
    fprintf(stderr, "error: %s: %s: %s\n", what, omni_status_str(st), omni_last_error());
    return 1;
}

static void on_progress(const char *stage, size_t done, size_t total, void *user_data) {
    (void)user_data;
    fprintf(stderr, "\rloading %-16s %zu/%zu", stage, done, total);
    if (done == total) fputc('\n', stderr);
}

int main(int argc, char **argv) {
    const char *model_dir = "tests/fixtures/omni_tiny";
    const char *vocoder_dir = "tests/fixtures/vocoder/tiny";
    const char *input = "tests/fixtures/speech/question.wav";
    const char *output = "answer.wav";
    const char *device = "cpu";
    int dtype = OMNI_DTYPE_F32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--model") && v) model_dir = argv[++i];
        else if (!strcmp(a, "--vocoder") && v) vocoder_dir = argv[++i];
        else if (!strcmp(a, "--output") && v) output = argv[++i];
        else if (!strcmp(a, "--device") && v) device = argv[++i];
        else if (!strcmp(a, "--dtype") && v) {
            v = argv[++i];
            dtype = !strcmp(v, "f16") ? OMNI_DTYPE_F16 : !strcmp(v, "bf16") ? OMNI_DTYPE_BF16 : OMNI_DTYPE_F32;
        } else if (a[0] != '-') input = a;
        else {
            fprintf(stderr,
                    "usage: %s [--model DIR] [--vocoder DIR] [--output answer.wav] [--device cpu] "
                    "[--dtype f32|f16|bf16] [question.wav|.flac|.mp3|.ogg]\n",
                    argv[0]);
            return 2;
        }
    }
    if (omni_abi_version() != OMNI_ABI_VERSION) {
        fprintf(stderr, "error: libomni ABI %u, this program was built for %u\n", omni_abi_version(),
                OMNI_ABI_VERSION);
        return 1;
    }

    OmniAudio *question = NULL;
    OmniStatus st = omni_audio_read(input, &question);
    if (st != OMNI_OK) return fail("read the question", st);
    const float *pcm = question->samples;
    size_t n = question->n_samples;
    uint32_t rate = question->sample_rate;
    fprintf(stderr, "omni %s: question %s (%.2f s at %u Hz)\n", omni_version(), input, (double)n / rate, rate);

    OmniModelOptions mo = {.struct_size = sizeof mo};
    st = omni_model_options_default(&mo);
    if (st != OMNI_OK) {
        omni_audio_free(question);
        return fail("model options", st);
    }
    mo.device = device;
    mo.dtype = dtype;
    OmniModel *model = NULL;
    st = omni_model_load(model_dir, vocoder_dir, &mo, on_progress, NULL, &model);
    if (st != OMNI_OK) {
        omni_audio_free(question);
        return fail("load", st);
    }

    OmniSessionOptions so = {.struct_size = sizeof so};
    omni_session_options_default(model, &so);
    so.endpointing = 0; /* this program ends the turn itself */
    OmniSession *session = NULL;
    st = omni_session_new(model, &so, &session);
    if (st != OMNI_OK) {
        omni_model_free(model);
        omni_audio_free(question);
        return fail("session", st);
    }

    /* Stream the question in 20 ms chunks, then end the turn. */
    size_t chunk = rate / 50 ? rate / 50 : 1;
    for (size_t off = 0; off < n && st == OMNI_OK; off += chunk) {
        size_t len = n - off < chunk ? n - off : chunk;
        st = omni_session_push_f32(session, pcm + off, len, rate);
    }
    omni_audio_free(question);
    if (st == OMNI_OK) st = omni_session_end_turn(session);
    if (st != OMNI_OK) {
        int rc = fail("push", st);
        omni_session_free(session);
        omni_model_free(model);
        return rc;
    }

    /* Pull events until the answer is done. */
    float *answer = NULL;
    size_t answer_n = 0, answer_cap = 0;
    uint32_t answer_rate = 16000;
    int done = 0, rc = 0;
    while (!done) {
        OmniEvent *ev = NULL;
        st = omni_session_poll(session, 600000, &ev);
        if (st != OMNI_OK) {
            rc = fail("poll", st);
            break;
        }
        if (!ev) {
            fprintf(stderr, "error: no answer within 10 minutes\n");
            rc = 1;
            break;
        }
        switch (ev->type) {
        case OMNI_EVENT_TEXT:
            fwrite(ev->text, 1, ev->text_len, stdout);
            fflush(stdout);
            break;
        case OMNI_EVENT_AUDIO:
            if (answer_n + ev->n_pcm > answer_cap) {
                size_t cap = (answer_n + ev->n_pcm) * 2;
                float *grown = realloc(answer, cap * sizeof *answer);
                if (!grown) {
                    fprintf(stderr, "error: out of memory\n");
                    rc = 1;
                    done = 1;
                    break;
                }
                answer = grown;
                answer_cap = cap;
            }
            memcpy(answer + answer_n, ev->pcm, ev->n_pcm * sizeof *answer);
            answer_n += ev->n_pcm;
            answer_rate = ev->sample_rate;
            fprintf(stderr, "\n  [audio chunk %u: %zu samples]\n", ev->seq, ev->n_pcm);
            break;
        case OMNI_EVENT_TURN_DONE: {
            const OmniTimings *t = &ev->timings;
            printf("\n");
            fprintf(stderr,
                    "turn %u done: encode %.1f ms, prefill %.1f ms, first text %.1f ms, first audio %.1f ms, "
                    "total %.1f ms, %lld tokens, %lld units, %.2f s audio, RTF %.2f\n",
                    ev->turn, t->encode_ms, t->prefill_ms, t->first_text_ms, t->first_audio_ms, t->total_ms,
                    (long long)t->tokens, (long long)t->units, t->audio_s, t->real_time_factor);
            done = 1;
            break;
        }
        case OMNI_EVENT_INTERRUPTED:
            fprintf(stderr, "\nanswer interrupted\n");
            done = 1;
            break;
        case OMNI_EVENT_WARNING:
            fprintf(stderr, "\nwarning: %s\n", ev->message);
            break;
        case OMNI_EVENT_ERROR:
            fprintf(stderr, "\nerror event (code %d): %s\n", ev->error_code, ev->message);
            rc = 1;
            done = 1;
            break;
        default: /* speech started/ended, turn started, units */
            break;
        }
        omni_event_free(ev);
    }

    if (rc == 0) {
        if (wav_write(output, answer, answer_n, answer_rate) != 0) {
            fprintf(stderr, "error: cannot write %s\n", output);
            rc = 1;
        } else {
            fprintf(stderr, "wrote %s (%.2f s)\n", output, (double)answer_n / answer_rate);
        }
    }
    free(answer);
    omni_session_free(session);
    omni_model_free(model);
    return rc;
}
