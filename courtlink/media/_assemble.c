/*
 * media._assemble: the recorder's per-packet and per-frame work, in C
 * (media/recording/depacketize.py, media/recording/track.py).
 *
 * The tap (media/_receive.c, ``tap_packet``) appends an entry per packet a Producer received
 * to the Producer's ``Tap``, one buffer: a 4-byte little-endian length, then 8 bytes of
 * arrival time (big-endian ns), a plain 12-byte RTP header, the payload. The recorder's writer
 * thread swaps the Tap for an empty one and hands the full one to the track's ``Assembler`` in
 * one call, which reads the entries in place (the buffer protocol: no Python object per
 * packet; a list of entries as bytes is taken too, for tests) and returns the whole frames the
 * batch completes (a packet held behind a hole is copied: the Tap is reused):
 *
 *   reorder  packets back in sequence order; a hole waits ``hold_ns`` (counted from the
 *            arrival of the packet that finds it) or until ``hold_packets`` are held behind
 *            it, then counts as lost; a duplicate, or a packet older than one already taken,
 *            is dropped; a new SSRC first releases everything held of the old one.
 *   VP8      (RFC 7741) the payload descriptor stripped, the partitions of one RTP timestamp
 *            joined until the marker bit; a key frame read from the VP8 frame header.
 *   H.264    (RFC 6184, modes 0 and 1) single NAL units, STAP-A and FU-A to one Annex-B
 *            access unit per RTP timestamp; a key frame holds an IDR slice.
 *   Opus     (RFC 7587) one frame per non-empty payload.
 *
 * A video frame with a hole (or a part that cannot be used) is dropped and video then waits
 * for the next key frame. Nothing here decodes. The Python depacketizer this replaces is kept
 * as the test's reference (tests/media/recording/reference.py), and the two are compared on
 * real and random packet sequences; they differ only where the Python raised or muxed
 * nothing: a video frame that assembles to no bytes at all is dropped here, and a frame
 * growing past MAX_FRAME bytes is dropped instead of growing without bound.
 *
 * The frames go back to Python as Frame objects, or (``push(batch, into=muxer)``) straight into
 * the track's ``Muxer`` (below), which keeps the file's timeline and hands each frame to
 * libavformat's "webm" muxer (the system's FFmpeg, linked here; one reused AVPacket, no
 * Python object per frame), writing through the opener's file. H.264 recordings (Matroska)
 * are still muxed by PyAV.
 *
 * Every read of a payload is checked against its length; the module holds no global state but
 * the Frame type.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/mem.h>

#define TAP_HEAD 20                 /* arrival (8) + RTP header (12) */
#define MAX_FRAME (16 * 1024 * 1024) /* a frame's bytes, at most */

enum codec { OPUS, VP8, H264 };

static const unsigned char ANNEX_B[4] = {0, 0, 0, 1};

/* One tapped packet, read from its bytes (which must stay alive while it is used). */
typedef struct {
    uint64_t arrived;
    uint16_t seq;
    uint32_t timestamp;
    uint32_t ssrc;
    int marker;
    const unsigned char *payload;
    Py_ssize_t length;
} Packet;

#define TAP_LENGTH 4                /* a Tap's entry: its length, then the entry */

/* A packet held behind a hole: its sequence number, arrival and (owned) copy of its entry. */
typedef struct {
    uint16_t seq;
    uint64_t arrived;
    unsigned char *entry;
    size_t size;
} Held;

static PyTypeObject *FrameType; /* a struct sequence, made once at import */

static PyStructSequence_Field frame_fields[] = {
    {"timestamp", "the RTP timestamp of the frame"},
    {"ssrc", "the RTP source it came from"},
    {"arrived_ns", "when its first packet arrived (ns since the epoch)"},
    {"data", "the frame's bytes, as a container stores them"},
    {"keyframe", "whether a decoder can start from it"},
    {NULL, NULL},
};

static PyStructSequence_Desc frame_desc = {
    "courtlink.media._assemble.Frame",
    "One whole frame of a track: its RTP timestamp and source, when its first packet came, "
    "its bytes, whether it is a key frame.",
    frame_fields,
    5,
};

typedef struct {
    PyObject_HEAD
    int codec;
    long long hold_ns;
    Py_ssize_t hold_packets;
    /* Reorder */
    int has_ssrc;
    uint32_t ssrc;
    int has_next;
    uint16_t next; /* the sequence number expected next */
    Held *held;
    Py_ssize_t nheld, held_cap;
    long long lost; /* packets given up on */
    /* The video frame being assembled */
    int has_frame;
    uint32_t f_timestamp, f_ssrc;
    uint64_t f_arrived;
    unsigned char *buf;
    size_t len, cap;
    Py_ssize_t nparts;
    int broken;
    int fu; /* H.264: inside a fragmented NAL unit */
    int waiting_keyframe;
    long long frames_dropped;
} Assembler;

static uint64_t
read_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The packet a tap entry ``q[0:size]`` holds; the caller has checked size >= TAP_HEAD. */
static void
parse(const unsigned char *q, size_t size, Packet *p)
{
    p->arrived = read_be(q, 8);
    p->marker = q[9] >= 0x80;
    p->seq = (uint16_t)read_be(q + 10, 2);
    p->timestamp = (uint32_t)read_be(q + 12, 4);
    p->ssrc = (uint32_t)read_be(q + 16, 4);
    p->payload = q + TAP_HEAD;
    p->length = (Py_ssize_t)(size - TAP_HEAD);
}

/* ------------------------------------------------------------------------------------------
 * Muxer: one track's frames into a WebM file, by libavformat's "webm" muxer.
 *
 * Each frame is put on the file's timeline (TrackFile's rules: within one RTP source its RTP
 * timestamp's distance from the source's first, on the source's anchor; a new source anchored
 * at its arrival, never before the end of what the file holds; never back, never two frames at
 * one time; each frame lasts as long as the gap before it, at most 100 ms), in milliseconds,
 * and handed to av_write_frame. libavformat closes a cluster ``cluster_ms`` after its start and
 * writes it through our I/O callbacks when it closes; cues, duration and sizes come with
 * av_write_trailer. A cluster larger than the I/O buffer (64 KiB) is written in pieces, so a
 * kill can leave the last cluster torn; a player reads up to the tear.
 */

/* ---- Muxer: one track's frames into a WebM file, by libavformat ("webm") ----------------- */

#define MUX_IO_BUFFER (64 * 1024)
#if LIBAVFORMAT_VERSION_MAJOR < 61 /* the write callback's buffer is const from FFmpeg 7 */
typedef uint8_t io_buffer;
#else
typedef const uint8_t io_buffer;
#endif
#define OPUS_PRE_SKIP 312 /* the OpusHead's pre-skip (track.opus_head), 48 kHz samples */
/* libavformat writes the pre-skip as the track's CodecDelay, and its demuxer takes that off
 * every block's time. Newer muxers (libavformat 62, PyAV's, here; not 59, Debian 12's FFmpeg
 * 5.1, where it is commented out) stamp Opus blocks that much later themselves (rounded to
 * the ms); with one that does not, the Muxer adds it, so Opus reads back from 0 either way
 * (tests/media/recording/test_webm.py compares with PyAV's files). */
#if LIBAVFORMAT_VERSION_MAJOR < 60
#define OPUS_TS_OFFSET_MS ((OPUS_PRE_SKIP * 1000 + 24000) / 48000)
#else
#define OPUS_TS_OFFSET_MS 0
#endif

typedef struct {
    PyObject_HEAD
    int audio;
    long long started_ns, rate, cluster_ms;
    PyObject *open;    /* open() -> the file (called at the first frame), then NULL */
    PyObject *file;    /* the file the opener returned */
    PyObject *extradata; /* bytes: the codec private data (OpusHead) */
    int fd;            /* the file's descriptor when it is a plain unbuffered file, else -1 */
    /* The timeline */
    int has_ssrc;
    uint32_t ssrc, last_ts;
    long long anchor, extended;
    int has_last;
    long long last_ms, frame_ms, first_ms, frames;
    int width, height; /* the first frame's picture (a VP8 key frame), 0 when unknown */
    /* libavformat */
    AVFormatContext *fmt;
    AVIOContext *io;
    AVPacket *pkt;
    int started, closed;
    PyObject *error;   /* the first write error (an exception), raised again until closed */
} Muxer;

static PyTypeObject MuxerType;

/* Python's floor division, for the timeline's arithmetic (which may go below zero). */
static long long
floordiv(long long a, long long b)
{
    long long q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* The write error, kept (the first one) for raising; the Python error indicator is cleared. */
static void
keep_error(Muxer *self)
{
    if (self->error == NULL) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        if (type != NULL) {
            PyErr_NormalizeException(&type, &value, &traceback);
            Py_XDECREF(type);
            Py_XDECREF(traceback);
        }
        if (value == NULL)
            value = PyObject_CallFunction(PyExc_OSError, "is", EIO, "the recording file failed");
        self->error = value;
    }
    PyErr_Clear();
}

/* libavformat's writes, straight to the file (its descriptor, or its write method). */
static int
io_write(void *opaque, io_buffer *buf, int size)
{
    Muxer *self = opaque;
    int left = size;
    while (left > 0) {
        Py_ssize_t n;
        if (self->fd >= 0) {
            int code;
            /* As Python's own file does: the event loop runs while the disk takes it. */
            Py_BEGIN_ALLOW_THREADS
            n = write(self->fd, buf, (size_t)left);
            code = errno;
            Py_END_ALLOW_THREADS
            if (n < 0 && code == EINTR)
                continue;
            if (n < 0) {
                errno = code;
                PyErr_SetFromErrno(PyExc_OSError);
                keep_error(self);
                return AVERROR(code);
            }
        }
        else {
            PyObject *r = PyObject_CallMethod(self->file, "write", "y#", (const char *)buf,
                                              (Py_ssize_t)left);
            if (r == NULL) {
                keep_error(self);
                return AVERROR(EIO);
            }
            n = r == Py_None ? 0 : PyLong_AsSsize_t(r);
            Py_DECREF(r);
            if (n < 0 && PyErr_Occurred()) {
                keep_error(self);
                return AVERROR(EIO);
            }
        }
        if (n <= 0) {
            PyErr_SetString(PyExc_OSError, "the recording file took no bytes");
            keep_error(self);
            return AVERROR(EIO);
        }
        buf += n;
        left -= (int)n;
    }
    return size;
}

static int64_t
io_seek(void *opaque, int64_t offset, int whence)
{
    Muxer *self = opaque;
    if (whence & AVSEEK_SIZE)
        return -1; /* not asked for by the muxer; unknown */
    whence &= ~AVSEEK_FORCE;
    if (self->fd >= 0) {
        off_t at = lseek(self->fd, (off_t)offset, whence);
        return at < 0 ? AVERROR(errno) : (int64_t)at;
    }
    PyObject *r = PyObject_CallMethod(self->file, "seek", "Li", (long long)offset, whence);
    if (r == NULL) {
        keep_error(self);
        return AVERROR(EIO);
    }
    long long at = PyLong_AsLongLong(r);
    Py_DECREF(r);
    if (at == -1 && PyErr_Occurred()) {
        keep_error(self);
        return AVERROR(EIO);
    }
    return at;
}

/* An exception for a libavformat error: the write error it came from, or its own message. */
static int
av_failed(Muxer *self, int code, const char *what)
{
    if (self->error != NULL) {
        /* The same error again, its traceback dropped: raised once per call, it would grow. */
        PyException_SetTraceback(self->error, Py_None);
        PyErr_SetObject((PyObject *)Py_TYPE(self->error), self->error);
        return -1;
    }
    char message[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(code, message, sizeof message);
    PyErr_Format(PyExc_OSError, "libavformat %s: %s", what, message);
    return -1;
}

/* The file opened (the opener, at the first frame) and its header written. */
static int
muxer_start(Muxer *self)
{
    self->started = 1; /* once: a start that fails is kept as the Muxer's error (muxer_add) */
    PyObject *file = PyObject_CallNoArgs(self->open);
    if (file == NULL)
        return -1;
    Py_CLEAR(self->open);
    self->file = file;
    self->fd = -1;
    if (strcmp(Py_TYPE(file)->tp_name, "_io.FileIO") == 0) { /* write(2) to it directly */
        PyObject *fd = PyObject_CallMethod(file, "fileno", NULL);
        if (fd == NULL)
            return -1;
        long number = PyLong_AsLong(fd);
        Py_DECREF(fd);
        self->fd = number < 0 || number > INT_MAX ? -1 : (int)number;
        if (PyErr_Occurred())
            return -1;
    }
    int r = avformat_alloc_output_context2(&self->fmt, NULL, "webm", NULL);
    if (r < 0)
        return av_failed(self, r, "webm muxer");
    unsigned char *buffer = av_malloc(MUX_IO_BUFFER);
    if (buffer == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->io = avio_alloc_context(buffer, MUX_IO_BUFFER, 1, self, NULL, io_write, io_seek);
    if (self->io == NULL) {
        av_free(buffer);
        PyErr_NoMemory();
        return -1;
    }
    self->fmt->pb = self->io;
    self->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    AVStream *st = avformat_new_stream(self->fmt, NULL);
    self->pkt = av_packet_alloc();
    if (st == NULL || self->pkt == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    st->time_base = (AVRational){1, 1000};
    AVCodecParameters *par = st->codecpar;
    if (self->audio) {
        par->codec_type = AVMEDIA_TYPE_AUDIO;
        par->codec_id = AV_CODEC_ID_OPUS;
        par->sample_rate = 48000;
        av_channel_layout_default(&par->ch_layout, 2);
        par->initial_padding = OPUS_PRE_SKIP; /* CodecDelay; the blocks' times after it */
        Py_ssize_t n = PyBytes_GET_SIZE(self->extradata);
        par->extradata = av_mallocz((size_t)n + AV_INPUT_BUFFER_PADDING_SIZE);
        if (par->extradata == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(par->extradata, PyBytes_AS_STRING(self->extradata), (size_t)n);
        par->extradata_size = (int)n;
    }
    else {
        par->codec_type = AVMEDIA_TYPE_VIDEO;
        par->codec_id = AV_CODEC_ID_VP8;
        par->width = self->width > 0 ? self->width : 640;
        par->height = self->height > 0 ? self->height : 480;
    }
    AVDictionary *options = NULL;
    char limit[24];
    snprintf(limit, sizeof limit, "%lld", self->cluster_ms);
    av_dict_set(&options, "cluster_time_limit", limit, 0);
    av_dict_set(&options, "flush_packets", "1", 0);
    r = avformat_write_header(self->fmt, &options);
    av_dict_free(&options);
    if (r < 0)
        return av_failed(self, r, "header");
    return 0;
}

/* One frame onto the timeline and into the file. */
static int
muxer_add(Muxer *self, uint32_t timestamp, uint32_t ssrc, long long arrived_ns,
          const unsigned char *data, Py_ssize_t length, int keyframe)
{
    if (self->closed) {
        PyErr_SetString(PyExc_ValueError, "the Muxer is closed");
        return -1;
    }
    if (self->error != NULL)
        return av_failed(self, AVERROR(EIO), "write");
    if (length > INT_MAX - AV_INPUT_BUFFER_PADDING_SIZE) {
        PyErr_SetString(PyExc_ValueError, "a frame is too long");
        return -1;
    }
    if (self->has_ssrc && ssrc == self->ssrc) {
        uint32_t step = timestamp - self->last_ts;
        self->extended += step >= 0x80000000u ? (long long)step - 0x100000000LL : (long long)step;
    }
    else { /* the first frame, or a new source (the participant reconnected) */
        self->has_ssrc = 1;
        self->ssrc = ssrc;
        self->extended = 0;
        long long after = self->has_last ? self->last_ms + self->frame_ms : 0;
        long long anchor = floordiv(arrived_ns - self->started_ns, 1000000);
        self->anchor = anchor > after ? anchor : after;
    }
    self->last_ts = timestamp;
    long long at = self->anchor + floordiv(self->extended * 1000, self->rate);
    long long frame_ms = self->frame_ms;
    if (self->has_last) {
        if (at <= self->last_ms)
            at = self->last_ms + 1;
        else
            frame_ms = at - self->last_ms < 100 ? at - self->last_ms : 100;
    }
    else if (!self->started) {
        self->first_ms = at;
        if (!self->audio && length >= 10 && !(data[0] & 0x01) && data[3] == 0x9D &&
            data[4] == 0x01 && data[5] == 0x2A) {
            self->width = (data[6] | (data[7] << 8)) & 0x3FFF;
            self->height = (data[8] | (data[9] << 8)) & 0x3FFF;
        }
        if (muxer_start(self) < 0) {
            /* Half started (no file, or no header): every later frame and close raise this. */
            keep_error(self);
            return av_failed(self, AVERROR(EIO), "start");
        }
    }
    self->frame_ms = frame_ms;
    /* The packet points at the frame's bytes: the muxer copies them (into its cluster). */
    AVPacket *pkt = self->pkt;
    pkt->data = (uint8_t *)data;
    pkt->size = (int)length;
    pkt->pts = pkt->dts = self->audio ? at + OPUS_TS_OFFSET_MS : at;
    pkt->duration = frame_ms;
    pkt->flags = keyframe ? AV_PKT_FLAG_KEY : 0;
    pkt->stream_index = 0;
    int r = av_write_frame(self->fmt, pkt);
    pkt->data = NULL;
    pkt->size = 0;
    if (r < 0 || self->error != NULL)
        return av_failed(self, r, "write");
    self->has_last = 1;
    self->last_ms = at;
    self->frames++;
    return 0;
}

static PyObject *
Muxer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Muxer *self = (Muxer *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->rate = 0; /* not initialised */
        self->fd = -1;
    }
    return (PyObject *)self;
}

static int
Muxer_init(Muxer *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"kind", "open", "started_ns", "cluster_ms", "extradata", NULL};
    const char *kind;
    PyObject *open = NULL, *extradata = NULL;
    long long started_ns = LLONG_MIN, cluster_ms = 1000;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|$OLLO:Muxer", kwlist, &kind, &open,
                                     &started_ns, &cluster_ms, &extradata))
        return -1;
    if (started_ns == LLONG_MIN || open == NULL) {
        PyErr_SetString(PyExc_TypeError, "Muxer() needs open and started_ns");
        return -1;
    }
    if (self->rate) {
        PyErr_SetString(PyExc_TypeError, "a Muxer is initialised once");
        return -1;
    }
    if (strcmp(kind, "audio") != 0 && strcmp(kind, "video") != 0) {
        PyErr_Format(PyExc_ValueError, "kind is audio or video, not '%s'", kind);
        return -1;
    }
    if (!PyCallable_Check(open)) {
        PyErr_SetString(PyExc_TypeError, "open is a callable returning the file");
        return -1;
    }
    if (cluster_ms < 1 || cluster_ms > 30000) {
        PyErr_SetString(PyExc_ValueError, "cluster_ms is 1-30000");
        return -1;
    }
    if (extradata == Py_None)
        extradata = NULL;
    if (extradata != NULL && !PyBytes_Check(extradata)) {
        PyErr_SetString(PyExc_TypeError, "extradata is bytes or None");
        return -1;
    }
    self->audio = kind[0] == 'a';
    if (self->audio && (extradata == NULL || PyBytes_GET_SIZE(extradata) < 19)) {
        PyErr_SetString(PyExc_ValueError, "an Opus track needs its OpusHead as extradata");
        return -1;
    }
    self->rate = self->audio ? 48000 : 90000;
    self->frame_ms = self->audio ? 20 : 33;
    self->started_ns = started_ns;
    self->cluster_ms = cluster_ms;
    self->open = Py_NewRef(open);
    self->extradata = Py_XNewRef(extradata);
    return 0;
}

/* The libavformat state freed (the file itself is the caller's to close). */
static void
muxer_free(Muxer *self)
{
    av_packet_free(&self->pkt);
    if (self->io != NULL) {
        av_freep(&self->io->buffer);
        avio_context_free(&self->io);
    }
    if (self->fmt != NULL) {
        self->fmt->pb = NULL;
        avformat_free_context(self->fmt);
        self->fmt = NULL;
    }
}

static void
Muxer_dealloc(Muxer *self)
{
    muxer_free(self);
    Py_XDECREF(self->open);
    Py_XDECREF(self->file);
    Py_XDECREF(self->extradata);
    Py_XDECREF(self->error);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
muxer_ready(Muxer *self)
{
    if (!self->rate) {
        PyErr_SetString(PyExc_RuntimeError, "the Muxer was not initialised");
        return -1;
    }
    return 0;
}

/* write(frames): Frames (or tuples of the same fields) onto the timeline, in order. */
static PyObject *
Muxer_write(Muxer *self, PyObject *frames)
{
    if (muxer_ready(self) < 0)
        return NULL;
    PyObject *items = PySequence_Tuple(frames);
    if (items == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(items); i++) {
        PyObject *frame = PyTuple_GET_ITEM(items, i);
        unsigned long timestamp, ssrc;
        long long arrived;
        const char *data;
        Py_ssize_t length;
        int keyframe;
        if (!PyTuple_Check(frame) || PyTuple_GET_SIZE(frame) != 5) {
            PyErr_Format(PyExc_TypeError, "a frame is a Frame of five fields, not %R", frame);
            goto fail;
        }
        if (!PyArg_ParseTuple(frame, "kkLy#p:Frame", &timestamp, &ssrc, &arrived, &data, &length,
                              &keyframe))
            goto fail;
        if (timestamp > 0xFFFFFFFFul || ssrc > 0xFFFFFFFFul) {
            PyErr_SetString(PyExc_ValueError, "an RTP timestamp and SSRC are 32 bits");
            goto fail;
        }
        if (muxer_add(self, (uint32_t)timestamp, (uint32_t)ssrc, arrived,
                      (const unsigned char *)data, length, keyframe) < 0)
            goto fail;
    }
    Py_DECREF(items);
    Py_RETURN_NONE;
fail:
    Py_DECREF(items);
    return NULL;
}

/* close(): the file's end written (the last cluster, cues, duration) by av_write_trailer;
 * idempotent. Raises the write error when the file failed (its whole clusters stay). */
static PyObject *
Muxer_close(Muxer *self, PyObject *unused)
{
    if (muxer_ready(self) < 0)
        return NULL;
    if (self->closed)
        Py_RETURN_NONE;
    self->closed = 1;
    int r = 0;
    if (self->fmt != NULL && self->started && self->error == NULL && self->frames > 0) {
        r = av_write_trailer(self->fmt);
        if (r >= 0 && self->io != NULL)
            avio_flush(self->io);
    }
    muxer_free(self);
    Py_CLEAR(self->open);
    if (r < 0 || self->error != NULL)
    {
        av_failed(self, r, "trailer");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
optional(int has, long long value)
{
    if (!has)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(value);
}

static PyObject *
Muxer_get_first_ms(Muxer *self, void *closure)
{
    return optional(self->frames > 0, self->first_ms);
}

static PyObject *
Muxer_get_last_ms(Muxer *self, void *closure)
{
    return optional(self->has_last, self->last_ms);
}

static PyObject *
Muxer_get_size(Muxer *self, void *closure)
{
    if (self->width <= 0 || self->height <= 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(ii)", self->width, self->height);
}

static PyMethodDef Muxer_methods[] = {
    {"write", (PyCFunction)Muxer_write, METH_O,
     "write(frames) -> None: frames (Frame) in order onto the file's timeline"},
    {"close", (PyCFunction)Muxer_close, METH_NOARGS,
     "close() -> None: the file's end written (cues, duration); raises its write error"},
    {NULL},
};

static PyMemberDef Muxer_members[] = {
    {"frames", T_LONGLONG, offsetof(Muxer, frames), READONLY, "frames written"},
    {"frame_ms", T_LONGLONG, offsetof(Muxer, frame_ms), READONLY,
     "how long the last frame lasts, in ms"},
    {"cluster_ms", T_LONGLONG, offsetof(Muxer, cluster_ms), READONLY,
     "libavformat's cluster_time_limit: a cluster is closed after this many ms"},
    {NULL},
};

static PyObject *
Muxer_get_file(Muxer *self, void *closure)
{
    return Py_NewRef(self->file != NULL ? self->file : Py_None);
}

static PyGetSetDef Muxer_getset[] = {
    {"file", (getter)Muxer_get_file, NULL, "the file open() returned, or None before", NULL},
    {"first_ms", (getter)Muxer_get_first_ms, NULL, "the first frame's time (ms), or None", NULL},
    {"last_ms", (getter)Muxer_get_last_ms, NULL, "the last frame's time (ms), or None", NULL},
    {"size", (getter)Muxer_get_size, NULL,
     "(width, height) of the first frame when it was a VP8 key frame, else None", NULL},
    {NULL},
};

static PyTypeObject MuxerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "courtlink.media._assemble.Muxer",
    .tp_basicsize = sizeof(Muxer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Muxer(kind, *, open, started_ns, cluster_ms=1000, extradata=None): one track's "
              "frames into a WebM file by libavformat, on the file's timeline (kind: audio "
              "(Opus; extradata: its OpusHead) or video (VP8); open() -> the file, called at "
              "the first frame).",
    .tp_new = Muxer_new,
    .tp_init = (initproc)Muxer_init,
    .tp_dealloc = (destructor)Muxer_dealloc,
    .tp_methods = Muxer_methods,
    .tp_members = Muxer_members,
    .tp_getset = Muxer_getset,
};

/* A whole frame out: appended to the list ``out`` as a Frame, or (``out`` a Muxer) written. */
static int
emit(PyObject *out, uint32_t timestamp, uint32_t ssrc, uint64_t arrived,
     const unsigned char *data, Py_ssize_t length, int keyframe)
{
    if (Py_IS_TYPE(out, &MuxerType))
        return muxer_add((Muxer *)out, timestamp, ssrc, (long long)arrived, data, length,
                         keyframe);
    PyObject *frame = PyStructSequence_New(FrameType);
    if (frame == NULL)
        return -1;
    PyObject *values[4] = {
        PyLong_FromUnsignedLong(timestamp),
        PyLong_FromUnsignedLong(ssrc),
        PyLong_FromUnsignedLongLong(arrived),
        PyBytes_FromStringAndSize((const char *)data, length),
    };
    for (int i = 0; i < 4; i++) {
        if (values[i] == NULL) {
            for (int j = 0; j < 4; j++)
                Py_XDECREF(values[j]);
            Py_DECREF(frame);
            return -1;
        }
        PyStructSequence_SET_ITEM(frame, i, values[i]);
    }
    PyStructSequence_SET_ITEM(frame, 4, Py_NewRef(keyframe ? Py_True : Py_False));
    int r = PyList_Append(out, frame);
    Py_DECREF(frame);
    return r;
}

/* Room for ``more`` bytes after the frame's ``len``; 0, or -1 when the frame would pass
 * MAX_FRAME (no exception) or memory ran out (MemoryError set, returns -2). */
static int
reserve(Assembler *self, size_t more)
{
    if (more > MAX_FRAME || self->len > MAX_FRAME - more)
        return -1;
    size_t need = self->len + more;
    if (need <= self->cap && self->buf != NULL) /* allocated even for 0 bytes: memcpy's */
        return 0;
    size_t cap = self->cap ? self->cap : 4096;
    while (cap < need)
        cap *= 2;
    unsigned char *buf = PyMem_Realloc(self->buf, cap);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -2;
    }
    self->buf = buf;
    self->cap = cap;
    return 0;
}

/* The frame bytes a VP8 packet carries, appended to the frame: 1 when appended, 0 when the
 * packet cannot be used (the Python's None), -1 on error. */
static int
vp8_part(Assembler *self, const Packet *pk, int starts)
{
    const unsigned char *p = pk->payload;
    Py_ssize_t n = pk->length;
    if (n < 1)
        return 0;
    Py_ssize_t size = 1;
    if (p[0] & 0x80) { /* X: extension bits follow */
        if (n < 2)
            return 0;
        unsigned char x = p[1];
        size = 2;
        if (x & 0x80) { /* I: picture id, 7 or 15 bits */
            if (n < 3)
                return 0;
            size += (p[2] & 0x80) ? 2 : 1;
        }
        if (x & 0x40) /* L: TL0PICIDX */
            size += 1;
        if (x & 0x30) /* T or K: TID/KEYIDX */
            size += 1;
    }
    if (n < size)
        return 0;
    /* A frame starts with S set on partition 0; a continuation must not claim to start. */
    int start = (p[0] & 0x10) && (p[0] & 0x07) == 0;
    if (start != starts)
        return 0;
    int r = reserve(self, (size_t)(n - size));
    if (r < 0)
        return r == -1 ? 0 : -1;
    memcpy(self->buf + self->len, p + size, (size_t)(n - size));
    self->len += (size_t)(n - size);
    return 1;
}

/* The same for H.264: single NAL unit, STAP-A, FU-A. */
static int
h264_part(Assembler *self, const Packet *pk, int starts)
{
    const unsigned char *p = pk->payload;
    Py_ssize_t n = pk->length;
    if (n < 1)
        return 0;
    if (starts)
        self->fu = 0;
    int kind = p[0] & 0x1F;
    if (kind >= 1 && kind <= 23) { /* a single NAL unit */
        if (self->fu)
            return 0;
        int r = reserve(self, 4 + (size_t)n);
        if (r < 0)
            return r == -1 ? 0 : -1;
        memcpy(self->buf + self->len, ANNEX_B, 4);
        memcpy(self->buf + self->len + 4, p, (size_t)n);
        self->len += 4 + (size_t)n;
        return 1;
    }
    if (kind == 24) { /* STAP-A: 16-bit sizes, each followed by a NAL unit */
        if (self->fu)
            return 0;
        /* Checked whole first: a bad unit makes the packet unusable, nothing appended. */
        size_t out = 0;
        Py_ssize_t i = 1;
        while (i + 2 <= n) {
            Py_ssize_t size = (p[i] << 8) | p[i + 1];
            i += 2;
            if (size == 0 || i + size > n)
                return 0;
            out += 4 + (size_t)size;
            i += size;
        }
        int r = reserve(self, out);
        if (r < 0)
            return r == -1 ? 0 : -1;
        i = 1;
        while (i + 2 <= n) {
            Py_ssize_t size = (p[i] << 8) | p[i + 1];
            i += 2;
            memcpy(self->buf + self->len, ANNEX_B, 4);
            memcpy(self->buf + self->len + 4, p + i, (size_t)size);
            self->len += 4 + (size_t)size;
            i += size;
        }
        return 1;
    }
    if (kind == 28 && n >= 2) { /* FU-A */
        unsigned char head = p[1];
        if (head & 0x80) { /* start: the NAL header rebuilt from indicator and FU header */
            if (self->fu)
                return 0;
            int r = reserve(self, 5 + (size_t)(n - 2));
            if (r < 0)
                return r == -1 ? 0 : -1;
            self->fu = !(head & 0x40);
            memcpy(self->buf + self->len, ANNEX_B, 4);
            self->buf[self->len + 4] = (unsigned char)((p[0] & 0xE0) | (head & 0x1F));
            memcpy(self->buf + self->len + 5, p + 2, (size_t)(n - 2));
            self->len += 5 + (size_t)(n - 2);
            return 1;
        }
        if (!self->fu)
            return 0;
        int r = reserve(self, (size_t)(n - 2));
        if (r < 0)
            return r == -1 ? 0 : -1;
        if (head & 0x40) /* end */
            self->fu = 0;
        memcpy(self->buf + self->len, p + 2, (size_t)(n - 2));
        self->len += (size_t)(n - 2);
        return 1;
    }
    return 0;
}

/* Whether an H.264 access unit holds an IDR slice: a piece between two Annex-B start codes
 * (split the way Python's bytes.split splits) starting with a NAL unit of type 5. */
static int
h264_keyframe(const unsigned char *data, size_t len)
{
    size_t start = 0;
    for (;;) {
        size_t end = len;
        for (size_t i = start; i + 4 <= len; i++) {
            if (data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 0 && data[i + 3] == 1) {
                end = i;
                break;
            }
        }
        if (end > start && (data[start] & 0x1F) == 5)
            return 1;
        if (end == len)
            return 0;
        start = end + 4;
    }
}

static void
drop_frame(Assembler *self)
{
    self->frames_dropped++;
    self->waiting_keyframe = 1;
    self->nparts = 0;
    self->len = 0;
}

/* One packet in order (``lost_before``: packets before it never came) to the codec. */
static int
take(Assembler *self, const Packet *pk, int lost_before, PyObject *out)
{
    if (self->codec == OPUS) {
        if (pk->length > 0)
            return emit(out, pk->timestamp, pk->ssrc, pk->arrived, pk->payload, pk->length, 1);
        return 0;
    }
    if (!self->has_frame || pk->timestamp != self->f_timestamp || pk->ssrc != self->f_ssrc) {
        if (self->nparts) /* the previous frame never saw its marker */
            drop_frame(self);
        self->has_frame = 1;
        self->f_timestamp = pk->timestamp;
        self->f_ssrc = pk->ssrc;
        self->f_arrived = pk->arrived;
        self->nparts = 0;
        self->len = 0;
        self->broken = lost_before;
    }
    else if (lost_before) {
        self->broken = 1;
    }
    if (!self->broken) {
        int starts = self->nparts == 0;
        int r = self->codec == VP8 ? vp8_part(self, pk, starts) : h264_part(self, pk, starts);
        if (r < 0)
            return -1;
        if (r == 0)
            self->broken = 1;
        else
            self->nparts++;
    }
    if (!pk->marker)
        return 0;
    int broken = self->broken;
    Py_ssize_t nparts = self->nparts;
    size_t len = self->len;
    self->has_frame = 0;
    self->nparts = 0;
    self->len = 0;
    self->broken = 0;
    if (broken || nparts == 0 || len == 0) {
        drop_frame(self);
        return 0;
    }
    int keyframe = self->codec == VP8 ? !(self->buf[0] & 0x01) : h264_keyframe(self->buf, len);
    if (self->waiting_keyframe && !keyframe) {
        self->frames_dropped++;
        return 0;
    }
    self->waiting_keyframe = 0;
    return emit(out, self->f_timestamp, self->f_ssrc, self->f_arrived, self->buf,
                (Py_ssize_t)len, keyframe);
}

static Py_ssize_t
find_held(Assembler *self, uint16_t seq)
{
    for (Py_ssize_t i = 0; i < self->nheld; i++)
        if (self->held[i].seq == seq)
            return i;
    return -1;
}

/* Everything held that can go, in order: stops at a hole still worth waiting for, unless
 * ``force`` (the stream ended). */
static int
release(Assembler *self, uint64_t now, int force, PyObject *out)
{
    int lost = 0;
    while (self->nheld > 0 && self->has_next) {
        Py_ssize_t i = find_held(self, self->next);
        if (i >= 0) {
            Held held = self->held[i];
            self->held[i] = self->held[--self->nheld];
            self->next = (uint16_t)(self->next + 1);
            Packet pk;
            parse(held.entry, held.size, &pk);
            int r = take(self, &pk, lost, out);
            PyMem_Free(held.entry);
            if (r < 0)
                return -1;
            lost = 0;
            continue;
        }
        /* A hole: wait for it, unless what is held is old or too much. */
        uint64_t oldest = self->held[0].arrived;
        Py_ssize_t first = 0;
        uint16_t distance = (uint16_t)(self->held[0].seq - self->next);
        for (Py_ssize_t j = 1; j < self->nheld; j++) {
            if (self->held[j].arrived < oldest)
                oldest = self->held[j].arrived;
            uint16_t d = (uint16_t)(self->held[j].seq - self->next);
            if (d < distance) {
                distance = d;
                first = j;
            }
        }
        int young = now < oldest || now - oldest < (uint64_t)self->hold_ns;
        if (!force && young && self->nheld < self->hold_packets)
            return 0;
        self->lost += distance;
        self->next = self->held[first].seq;
        lost = 1;
    }
    return 0;
}

static int
push_one(Assembler *self, const unsigned char *entry, size_t size, PyObject *out)
{
    Packet pk;
    parse(entry, size, &pk);
    if (!self->has_ssrc || pk.ssrc != self->ssrc) {
        if (release(self, 0, 1, out) < 0)
            return -1;
        self->has_ssrc = 1;
        self->ssrc = pk.ssrc;
        self->has_next = 0;
    }
    if (!self->has_next) {
        self->has_next = 1;
        self->next = pk.seq;
    }
    if (pk.seq == self->next && self->nheld == 0) { /* the usual case */
        self->next = (uint16_t)(self->next + 1);
        return take(self, &pk, 0, out);
    }
    uint16_t behind = (uint16_t)(self->next - pk.seq);
    if ((behind > 0 && behind < 0x8000) || find_held(self, pk.seq) >= 0)
        return 0; /* too late, or a duplicate */
    if (self->nheld == self->held_cap) {
        Py_ssize_t cap = self->held_cap ? self->held_cap * 2 : 64;
        Held *held = PyMem_Realloc(self->held, (size_t)cap * sizeof(Held));
        if (held == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->held = held;
        self->held_cap = cap;
    }
    unsigned char *copy = PyMem_Malloc(size);
    if (copy == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(copy, entry, size);
    self->held[self->nheld++] = (Held){pk.seq, pk.arrived, copy, size};
    return release(self, pk.arrived, 0, out);
}

static const char *const codecs[] = {"opus", "vp8", "h264"};

static int
Assembler_init(Assembler *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"codec", "hold_ns", "hold_packets", NULL};
    const char *codec;
    long long hold_ns = 300000000;
    Py_ssize_t hold_packets = 1024;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|$Ln:Assembler", kwlist, &codec, &hold_ns,
                                     &hold_packets))
        return -1;
    if (self->codec >= 0) {
        PyErr_SetString(PyExc_TypeError, "an Assembler is initialised once");
        return -1;
    }
    for (int i = 0; i < 3; i++)
        if (strcmp(codec, codecs[i]) == 0)
            self->codec = i;
    if (self->codec < 0) {
        PyErr_Format(PyExc_ValueError, "no assembler for '%s'", codec);
        return -1;
    }
    if (hold_ns < 0 || hold_packets < 0) {
        PyErr_SetString(PyExc_ValueError, "hold_ns and hold_packets must not be negative");
        self->codec = -1;
        return -1;
    }
    self->hold_ns = hold_ns;
    self->hold_packets = hold_packets;
    self->waiting_keyframe = self->codec != OPUS;
    return 0;
}

static PyObject *
Assembler_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Assembler *self = (Assembler *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->codec = -1;
    return (PyObject *)self;
}

static void
Assembler_dealloc(Assembler *self)
{
    for (Py_ssize_t i = 0; i < self->nheld; i++)
        PyMem_Free(self->held[i].entry);
    PyMem_Free(self->held);
    PyMem_Free(self->buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
ready(Assembler *self)
{
    if (self->codec < 0) {
        PyErr_SetString(PyExc_RuntimeError, "the Assembler was not initialised");
        return -1;
    }
    return 0;
}

/* The optional ``into``: None, or an initialised Muxer. */
static int
sink(PyObject *into)
{
    if (into == Py_None)
        return 0;
    if (!Py_IS_TYPE(into, &MuxerType)) {
        PyErr_Format(PyExc_TypeError, "into is a Muxer or None, not %R", into);
        return -1;
    }
    return muxer_ready((Muxer *)into) < 0 ? -1 : 1;
}

/* The length of the entry at ``at`` in a tap buffer, or -1 when none fits there. */
static Py_ssize_t
entry_length(const unsigned char *data, size_t len, size_t at)
{
    if (len - at < TAP_LENGTH)
        return -1;
    size_t n = (size_t)data[at] | ((size_t)data[at + 1] << 8) | ((size_t)data[at + 2] << 16) |
               ((size_t)data[at + 3] << 24);
    return n < TAP_HEAD || n > len - at - TAP_LENGTH ? -1 : (Py_ssize_t)n;
}

/* A Tap's entries (or any buffer in its layout), checked whole before any is taken, and each
 * again as it is taken: a writable buffer (not a Tap, which refuses to change while one is
 * open) could be changed by another thread while a write lets it run. */
static PyObject *
push_buffer(Assembler *self, PyObject *batch, PyObject *out)
{
    Py_buffer view;
    if (PyObject_GetBuffer(batch, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *data = view.buf;
    size_t len = (size_t)view.len, at = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (at = 0; at < len;) {
            Py_ssize_t n = entry_length(data, len, at);
            if (n < 0) {
                PyErr_Format(PyExc_ValueError,
                             "a tap buffer holds entries of a 4-byte length and at least %d "
                             "bytes (arrival, RTP header); byte %zu is not one",
                             TAP_HEAD, at);
                PyBuffer_Release(&view);
                return NULL;
            }
            if (pass == 1 && push_one(self, data + at + TAP_LENGTH, (size_t)n, out) < 0) {
                PyBuffer_Release(&view);
                return NULL;
            }
            at += TAP_LENGTH + (size_t)n;
        }
    }
    PyBuffer_Release(&view);
    return out;
}

static PyObject *
Assembler_push(Assembler *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"batch", "into", NULL};
    PyObject *batch, *into = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:push", kwlist, &batch, &into))
        return NULL;
    if (ready(self) < 0)
        return NULL;
    int to_muxer = sink(into);
    if (to_muxer < 0)
        return NULL;
    if (!PyList_Check(batch) && !PyTuple_Check(batch)) {
        PyObject *out = PyList_New(0);
        if (out == NULL)
            return NULL;
        if (push_buffer(self, batch, to_muxer ? into : out) == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        return out;
    }
    /* A tuple of the batch: nothing a garbage collection runs can change it under us. */
    PyObject *items = PySequence_Tuple(batch);
    if (items == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        if (!PyBytes_CheckExact(item) || PyBytes_GET_SIZE(item) < TAP_HEAD) {
            PyErr_Format(PyExc_ValueError,
                         "a tap entry is bytes of at least %d (arrival, RTP header), not %R",
                         TAP_HEAD, item);
            Py_DECREF(items);
            return NULL;
        }
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        Py_DECREF(items);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        if (push_one(self, (const unsigned char *)PyBytes_AS_STRING(item),
                     (size_t)PyBytes_GET_SIZE(item), to_muxer ? into : out) < 0) {
            Py_DECREF(items);
            Py_DECREF(out);
            return NULL;
        }
    }
    Py_DECREF(items);
    return out;
}

static PyObject *
Assembler_drain(Assembler *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"into", NULL};
    PyObject *into = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:drain", kwlist, &into))
        return NULL;
    if (ready(self) < 0)
        return NULL;
    int to_muxer = sink(into);
    if (to_muxer < 0)
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    if (release(self, 0, 1, to_muxer ? into : out) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *
Assembler_get_video(Assembler *self, void *closure)
{
    return PyBool_FromLong(self->codec == VP8 || self->codec == H264);
}

static PyObject *
Assembler_get_codec(Assembler *self, void *closure)
{
    if (ready(self) < 0)
        return NULL;
    return PyUnicode_FromString(codecs[self->codec]);
}

static PyObject *
Assembler_get_waiting(Assembler *self, void *closure)
{
    return PyBool_FromLong(self->waiting_keyframe);
}

static PyObject *
Assembler_get_held(Assembler *self, void *closure)
{
    return PyLong_FromSsize_t(self->nheld);
}

static PyMethodDef Assembler_methods[] = {
    {"push", (PyCFunction)(void (*)(void))Assembler_push, METH_VARARGS | METH_KEYWORDS,
     "push(batch, into=None) -> list[Frame]: tap entries (in any order) in, a Tap "
     "(media._forward.Tap, read in place) or a list of entries as bytes; the frames they "
     "complete (written into the Muxer ``into`` instead, when given: the list is empty)"},
    {"drain", (PyCFunction)(void (*)(void))Assembler_drain, METH_VARARGS | METH_KEYWORDS,
     "drain(into=None) -> list[Frame]: everything held, in order, as though every hole were "
     "lost (into the Muxer ``into``, when given)"},
    {NULL},
};

static PyMemberDef Assembler_members[] = {
    {"frames_dropped", T_LONGLONG, offsetof(Assembler, frames_dropped), READONLY,
     "video frames dropped (a hole, an unusable part, or waiting for a key frame)"},
    {"lost", T_LONGLONG, offsetof(Assembler, lost), READONLY, "packets given up on"},
    {"hold_ns", T_LONGLONG, offsetof(Assembler, hold_ns), READONLY,
     "how long a hole is waited for"},
    {"hold_packets", T_PYSSIZET, offsetof(Assembler, hold_packets), READONLY,
     "the most packets held behind a hole"},
    {NULL},
};

static PyGetSetDef Assembler_getset[] = {
    {"video", (getter)Assembler_get_video, NULL, "whether the codec is a video codec", NULL},
    {"codec", (getter)Assembler_get_codec, NULL, "the codec: opus, vp8 or h264", NULL},
    {"waiting_keyframe", (getter)Assembler_get_waiting, NULL,
     "video: no frame goes out until a key frame comes (always false for audio)", NULL},
    {"held", (getter)Assembler_get_held, NULL, "packets held behind a hole", NULL},
    {NULL},
};

static PyTypeObject AssemblerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "courtlink.media._assemble.Assembler",
    .tp_basicsize = sizeof(Assembler),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Assembler(codec, *, hold_ns=300_000_000, hold_packets=1024): one track's tap "
              "entries to whole frames (codec: opus, vp8, h264).",
    .tp_new = Assembler_new,
    .tp_init = (initproc)Assembler_init,
    .tp_dealloc = (destructor)Assembler_dealloc,
    .tp_methods = Assembler_methods,
    .tp_members = Assembler_members,
    .tp_getset = Assembler_getset,
};

static struct PyModuleDef assemble_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "courtlink.media._assemble",
    .m_doc = "The recorder's per-packet work in C: tap entries to whole frames.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__assemble(void)
{
    if (PyType_Ready(&AssemblerType) < 0 || PyType_Ready(&MuxerType) < 0)
        return NULL;
    /* libavformat's log (this FFmpeg's, not PyAV's own): errors only; a failure the Muxer
     * meets is raised as an exception. */
    av_log_set_level(AV_LOG_ERROR);
    if (FrameType == NULL) {
        FrameType = PyStructSequence_NewType(&frame_desc);
        if (FrameType == NULL)
            return NULL;
    }
    PyObject *module = PyModule_Create(&assemble_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "Assembler", (PyObject *)&AssemblerType) < 0 ||
        PyModule_AddObjectRef(module, "Muxer", (PyObject *)&MuxerType) < 0 ||
        PyModule_AddObjectRef(module, "Frame", (PyObject *)FrameType) < 0 ||
        PyModule_AddIntConstant(module, "HOLD_NS", 300000000) < 0 ||
        PyModule_AddIntConstant(module, "HOLD_PACKETS", 1024) < 0 ||
        PyModule_AddIntConstant(module, "MAX_FRAME", MAX_FRAME) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
