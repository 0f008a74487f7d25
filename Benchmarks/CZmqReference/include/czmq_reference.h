#ifndef CZMQ_REFERENCE_H
#define CZMQ_REFERENCE_H

/// The same patterns as rlaif's transport benchmark, straight against libzmq: a DEALER sends to a
/// ROUTER over tcp loopback; a receiver thread takes every message. Each returns its metric.

/// One-way throughput in messages per second of `count` messages of `size` bytes.
/// `zero_copy`: send one buffer by reference (zmq_msg_init_data) instead of copying it.
double czmq_reference_throughput(const char *endpoint, long size, long count, int zero_copy);

/// Mean round-trip time in microseconds of `count` small (`size`-byte) request/echo pairs.
double czmq_reference_round_trip_us(const char *endpoint, long size, long count);

#endif
