#!/usr/bin/env bash
# Encodes tests/fixtures/speech/question.wav into the compressed fixtures of
# tests/audio_files.rs (committed; this script only documents how they were made).
# Needs ffmpeg (Debian: apt-get install ffmpeg) with libmp3lame, libvorbis, libopus.
#   question.flac               lossless: decodes to exactly the WAV's samples
#   question_stereo_left.flac   left = the question, right = silence (downmix test)
#   question.mp3                32 kb/s MPEG-2 layer III (with the LAME/Info tag)
#   question.ogg                Vorbis q3
#   question.opus               Opus 24 kb/s (omni refuses it: unsupported codec)
set -euo pipefail
cd "$(dirname "$0")/../tests/fixtures/speech"
f=(ffmpeg -nostdin -hide_banner -loglevel error -y -i question.wav -map_metadata -1 -fflags +bitexact -flags:a +bitexact)
"${f[@]}" -c:a flac question.flac
"${f[@]}" -af "pan=stereo|c0=c0|c1=0*c0" -c:a flac question_stereo_left.flac
"${f[@]}" -c:a libmp3lame -b:a 32k question.mp3
"${f[@]}" -c:a libvorbis -q:a 3 question.ogg
"${f[@]}" -c:a libopus -b:a 24k question.opus
ls -l question.*
