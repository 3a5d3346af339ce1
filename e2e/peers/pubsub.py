#!/usr/bin/env python3
"""A local stand-in for Google Cloud Pub/Sub's gRPC API (google.pubsub.v1), for ramlet's tests.

It follows the published API (https://cloud.google.com/pubsub/docs/reference/rpc/google.pubsub.v1)
for the calls ramlet and its tests make, with Pub/Sub's delivery rules where they matter:
- Publisher.Publish stores a message (with a server-assigned `message_id` and `publish_time`) on
  every subscription of the topic; an unknown topic is NOT_FOUND;
- Subscriber.StreamingPull: the first request names the subscription and the stream's ack
  deadline; messages are sent on the open streams, each outstanding until acknowledged, and
  delivered again (to any stream) when its deadline passes or it is nacked (deadline 0);
  requests on the stream may carry `ack_ids` and `modify_deadline_*` too; an unknown
  subscription ends the stream with NOT_FOUND, a `stream_ack_deadline_seconds` outside 10-600
  with INVALID_ARGUMENT (ModifyAckDeadline likewise outside 0-600);
- Subscriber.Acknowledge and Subscriber.ModifyAckDeadline (unary), as the client library's lease
  manager sends them; an unknown ack ID is ignored, as Pub/Sub does;
- Subscriber.Pull (unary, `max_messages`), for completeness of the pull API.
Topics and subscriptions are made on the command line (`--subscription SUB=TOPIC`), as an admin
would with gcloud. Every call is logged to --log as one line "METHOD NAME" (no message data), so
tests count calls at the wire. Message bodies go through proto-plus classes of the
google-cloud-pubsub Python package (the published protos), served by grpcio.

    pubsub.py --port 8086 --log calls.log \\
        --subscription projects/p/subscriptions/ramlet=projects/p/topics/secrets
"""

import argparse
import itertools
import queue
import sys
import threading
import time
from concurrent import futures

import grpc
from google.protobuf import timestamp_pb2
from google.pubsub_v1.types import pubsub as p

DEFAULT_ACK_DEADLINE = 10
# The ack deadline bounds the API documents (StreamingPullRequest, ModifyAckDeadlineRequest).
MIN_ACK_DEADLINE = 10
MAX_ACK_DEADLINE = 600


class Subscription:
    def __init__(self, name, topic):
        self.name = name
        self.topic = topic
        # ack_id -> (message, deadline or None when waiting to be sent)
        self.messages = {}
        self.attempts = {}


class State:
    def __init__(self, subscriptions, log):
        self.lock = threading.Condition()
        self.subscriptions = {s.name: s for s in subscriptions}
        self.topics = {s.topic for s in subscriptions}
        self.ids = itertools.count(1)
        self.log_path = log

    def log(self, method, name):
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"{method} {name}\n")

    def publish(self, topic, messages):
        with self.lock:
            ids = []
            for message in messages:
                message_id = str(next(self.ids))
                stamp = timestamp_pb2.Timestamp()
                stamp.GetCurrentTime()
                stored = p.PubsubMessage(
                    data=message.data,
                    attributes=dict(message.attributes),
                    message_id=message_id,
                    publish_time=stamp,
                    ordering_key=message.ordering_key,
                )
                for sub in self.subscriptions.values():
                    if sub.topic == topic:
                        sub.messages[f"{sub.name}#{message_id}"] = (stored, None)
                ids.append(message_id)
            self.lock.notify_all()
            return ids

    def take(self, sub, deadline_secs, limit):
        """Messages of `sub` that are not outstanding, marked outstanding for deadline_secs."""
        now = time.monotonic()
        out = []
        for ack_id, (message, deadline) in list(sub.messages.items()):
            if len(out) >= limit:
                break
            if deadline is None or deadline <= now:
                sub.messages[ack_id] = (message, now + deadline_secs)
                sub.attempts[ack_id] = sub.attempts.get(ack_id, 0) + 1
                out.append(p.ReceivedMessage(ack_id=ack_id, message=message))
        return out

    def acknowledge(self, sub, ack_ids):
        with self.lock:
            for ack_id in ack_ids:
                sub.messages.pop(ack_id, None)
                sub.attempts.pop(ack_id, None)

    def modify(self, sub, ack_ids, seconds):
        with self.lock:
            now = time.monotonic()
            for ack_id in ack_ids:
                if ack_id in sub.messages:
                    message, _ = sub.messages[ack_id]
                    sub.messages[ack_id] = (message, now + seconds)
            self.lock.notify_all()


def not_found(context, name):
    context.abort(grpc.StatusCode.NOT_FOUND, f"Resource not found (resource={name}).")


class Service:
    def __init__(self, state):
        self.state = state

    def subscription(self, context, name):
        sub = self.state.subscriptions.get(name)
        if sub is None:
            not_found(context, name)
        return sub

    def publish(self, request, context):
        self.state.log("Publish", request.topic)
        if request.topic not in self.state.topics:
            not_found(context, request.topic)
        ids = self.state.publish(request.topic, request.messages)
        return p.PublishResponse(message_ids=ids)

    def acknowledge(self, request, context):
        self.state.log("Acknowledge", request.subscription)
        sub = self.subscription(context, request.subscription)
        self.state.acknowledge(sub, request.ack_ids)
        return EMPTY

    def modify_ack_deadline(self, request, context):
        self.state.log("ModifyAckDeadline", request.subscription)
        sub = self.subscription(context, request.subscription)
        if not 0 <= request.ack_deadline_seconds <= MAX_ACK_DEADLINE:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Invalid ack deadline given: {request.ack_deadline_seconds}; "
                f"it must be between 0 and {MAX_ACK_DEADLINE} seconds.",
            )
        self.state.modify(sub, request.ack_ids, request.ack_deadline_seconds)
        return EMPTY

    def pull(self, request, context):
        self.state.log("Pull", request.subscription)
        sub = self.subscription(context, request.subscription)
        with self.state.lock:
            got = self.state.take(sub, DEFAULT_ACK_DEADLINE, max(1, request.max_messages))
        return p.PullResponse(received_messages=got)

    def streaming_pull(self, requests, context):
        first = next(requests, None)
        if first is None:
            return
        self.state.log("StreamingPull", first.subscription)
        sub = self.subscription(context, first.subscription)
        deadline = first.stream_ack_deadline_seconds
        if not MIN_ACK_DEADLINE <= deadline <= MAX_ACK_DEADLINE:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Invalid stream_ack_deadline_seconds: {deadline}; "
                f"it must be between {MIN_ACK_DEADLINE} and {MAX_ACK_DEADLINE}.",
            )
        incoming = queue.Queue()

        def read():
            try:
                for request in requests:
                    incoming.put(request)
            except grpc.RpcError:
                pass
            incoming.put(None)
            with self.state.lock:
                self.state.lock.notify_all()

        threading.Thread(target=read, daemon=True).start()
        self.apply(sub, first)
        closed = False
        while context.is_active() and not closed:
            while not incoming.empty():
                request = incoming.get()
                if request is None:
                    closed = True
                    break
                self.apply(sub, request)
            with self.state.lock:
                got = self.state.take(sub, deadline, 1000)
                if not got:
                    self.state.lock.wait(timeout=0.2)
            if got:
                yield p.StreamingPullResponse(
                    received_messages=got,
                    subscription_properties=p.StreamingPullResponse.SubscriptionProperties(
                        exactly_once_delivery_enabled=False, message_ordering_enabled=False
                    ),
                )

    def apply(self, sub, request):
        """The acks and deadline changes a StreamingPull request carries."""
        if request.ack_ids:
            self.state.acknowledge(sub, request.ack_ids)
        if request.modify_deadline_ack_ids:
            for ack_id, seconds in zip(
                request.modify_deadline_ack_ids, request.modify_deadline_seconds
            ):
                self.state.modify(sub, [ack_id], seconds)


class _Empty:
    """google.protobuf.Empty: no fields, serialized as no bytes."""


EMPTY = _Empty()


def handlers(service):
    def unary(fn, request_type, response_type):
        return grpc.unary_unary_rpc_method_handler(
            fn,
            request_deserializer=request_type.deserialize,
            response_serializer=response_type.serialize,
        )

    def empty(_):
        return b""

    publisher = grpc.method_handlers_generic_handler(
        "google.pubsub.v1.Publisher",
        {"Publish": unary(service.publish, p.PublishRequest, p.PublishResponse)},
    )
    subscriber = grpc.method_handlers_generic_handler(
        "google.pubsub.v1.Subscriber",
        {
            "Acknowledge": grpc.unary_unary_rpc_method_handler(
                service.acknowledge,
                request_deserializer=p.AcknowledgeRequest.deserialize,
                response_serializer=empty,
            ),
            "ModifyAckDeadline": grpc.unary_unary_rpc_method_handler(
                service.modify_ack_deadline,
                request_deserializer=p.ModifyAckDeadlineRequest.deserialize,
                response_serializer=empty,
            ),
            "Pull": unary(service.pull, p.PullRequest, p.PullResponse),
            "StreamingPull": grpc.stream_stream_rpc_method_handler(
                service.streaming_pull,
                request_deserializer=p.StreamingPullRequest.deserialize,
                response_serializer=p.StreamingPullResponse.serialize,
            ),
        },
    )
    return [publisher, subscriber]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--subscription", action="append", default=[],
                        help="SUBSCRIPTION=TOPIC, full names")
    parser.add_argument("--log", required=True, help="file that gets one line per call")
    args = parser.parse_args()
    subs = []
    for pair in args.subscription:
        name, _, topic = pair.partition("=")
        subs.append(Subscription(name, topic))
    open(args.log, "a", encoding="utf-8").close()
    state = State(subs, args.log)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    server.add_generic_rpc_handlers(handlers(Service(state)))
    server.add_insecure_port(f"{args.host}:{args.port}")
    server.start()
    print(f"pubsub fake listening on {args.host}:{args.port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    sys.exit(main())
