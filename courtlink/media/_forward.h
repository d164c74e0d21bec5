/*
 * What the two halves of media._forward share: _forward.c (the way out: Sender, Slot, Ingress)
 * and _receive.c (the way in: RTP parsing, key frames, receiver statistics, NACK gaps and
 * Source, the C base of media.producer.Producer, which hands each packet to its Slots).
 */
#ifndef COURTLINK_FORWARD_H
#define COURTLINK_FORWARD_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* Symbols shared between the two files, and by nothing else. */
#define CL_INTERNAL __attribute__((visibility("hidden")))

/* The largest plaintext RTP packet accepted, and room for libsrtp's trailer after it
 * (SRTP_MAX_TRAILER_LEN is 144 in libsrtp 2). */
#define MAX_PACKET 1500
#define MAX_TRAILER 144

/* An object field that is None, or NULL (deleted from Python, or cleared by the collector). */
#define ABSENT(field) ((field) == NULL || (field) == Py_None)

/* What forwarding needs of an incoming RTP packet (media.rtp.RtpHeader's fields). The
 * payload is data[payload_start:payload_end] of the datagram it was read from. */
typedef struct {
    int marker;
    int payload_type;
    int sequence_number;
    uint32_t timestamp;
    uint32_t ssrc;
    Py_ssize_t payload_start;
    Py_ssize_t payload_end;
    int audio_level;       /* the raw extension byte, or -1 */
    long abs_send_time;    /* 24 bits, or -1 */
} RtpFields;

CL_INTERNAL extern PyTypeObject SlotType;

/* One packet of the source to the subscriber of ``slot`` (a Slot or subclass), rewritten:
 * 1 when sent, 0 when not, -1 with an exception set. ``payload`` and ``value`` must stay
 * valid across Python calls (they point into objects the caller holds). */
CL_INTERNAL int slot_forward(PyObject *slot, const RtpFields *header, const char *payload,
                             Py_ssize_t payload_size, const char *value, Py_ssize_t value_size,
                             int keyframe);

/* The Demux type (media._forward.Demux), and its receive: one decrypted RTP packet
 * ``p[0:size]`` of the participant to the Source of its payload type; copies sent, or -1 with
 * an exception set. ``arrived_ns`` is on CLOCK_MONOTONIC (time.perf_counter_ns). */
CL_INTERNAL extern PyTypeObject DemuxType;
CL_INTERNAL int demux_receive(PyObject *demux, const unsigned char *p, Py_ssize_t size,
                              long long arrived_ns);

/* A sequence number argument: 0..65535, or -1 with an exception set. */
CL_INTERNAL int sequence_arg(PyObject *arg);

/* Adds the receiving half's types and functions to the module. */
CL_INTERNAL int receive_exec(PyObject *module);

#endif
