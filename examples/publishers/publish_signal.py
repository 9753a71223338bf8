#!/usr/bin/env python3
"""Publish one privacy request to Hush over Kafka (topic hush.signals.v1), as an upstream system
(a consent platform, a web back end, a call-centre tool) would, with confluent-kafka and the
schema registry. Intake validates it exactly like an HTTP submission.

    pip install "confluent-kafka[avro,schemaregistry]"
    python3 examples/publishers/publish_signal.py --email jane@example.com \
        --source web-backend --idempotency-key form-7f3a

Defaults: Kafka 127.0.0.1:9092, registry http://127.0.0.1:8081/apis/ccompat/v7 (override with
KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL or the flags). Prints the published signal's
partition and offset as JSON.
"""

import argparse
import json
import os
import pathlib
import sys
import time

from confluent_kafka import SerializingProducer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry import topic_subject_name_strategy
from confluent_kafka.serialization import StringSerializer

SCHEMA = pathlib.Path(__file__).resolve().parents[2] / "schemas" / "privacy_signal.avsc"


def signal_from(args):
    """The PrivacySignal record, as the schema in schemas/privacy_signal.avsc describes it."""
    identifiers = []
    for kind, value in (("EMAIL", args.email), ("PHONE", args.phone),
                        ("CUSTOMER_ID", args.customer_id), ("DEVICE_ID", args.device_id)):
        if value:
            identifiers.append({"type": kind, "value": value, "sha256": None})
    if args.email_sha256:
        identifiers.append({"type": "EMAIL", "value": None, "sha256": args.email_sha256})
    if not identifiers:
        sys.exit("give at least one identifier (--email, --phone, --customer-id, --device-id)")
    verification = None
    if args.attestation:
        # The identity system's signed JWT; intake takes method and time from it.
        verification = {"method": args.verified_by or "ATTESTED",
                        "verified_at": int(time.time() * 1000),
                        "attestation": args.attestation}
    elif args.verified_by:
        verification = {"method": args.verified_by, "verified_at": int(time.time() * 1000),
                        "attestation": None}
    return {
        "kind": args.kind,
        "identifiers": identifiers,
        "channel": args.channel,
        "jurisdiction": args.jurisdiction,
        "categories": args.category or [],
        "verification": verification,
        "age_band": None,
        "consumer_initiated": args.consumer_initiated,
        "received_at": args.received_at or int(time.time() * 1000),
        "source": args.source,
        "idempotency_key": args.idempotency_key,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    parser.add_argument("--registry", default=os.environ.get(
        "SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081/apis/ccompat/v7"))
    parser.add_argument("--topic", default="hush.signals.v1")
    parser.add_argument("--kind", default="OPT_OUT_SALE_SHARE",
                        choices=["OPT_OUT_SALE_SHARE", "LIMIT_SENSITIVE", "DELETE", "OPT_IN_SALE_SHARE"])
    parser.add_argument("--email")
    parser.add_argument("--email-sha256")
    parser.add_argument("--phone")
    parser.add_argument("--customer-id")
    parser.add_argument("--device-id")
    parser.add_argument("--channel", default=None)
    parser.add_argument("--jurisdiction", default=None)
    parser.add_argument("--category", action="append")
    parser.add_argument("--verified-by", help="verification method (described only)")
    parser.add_argument("--attestation", default=os.environ.get("HUSH_ATTESTATION"),
                        help="the identity system's signed attestation (JWT); required for DELETE "
                             "and a consumer-initiated OPT_IN")
    parser.add_argument("--consumer-initiated", action="store_true")
    parser.add_argument("--received-at", type=int, help="upstream receipt, epoch milliseconds")
    parser.add_argument("--source", required=True, help="name of the publishing system")
    parser.add_argument("--idempotency-key", required=True, help="unique per request within the source")
    args = parser.parse_args()

    registry = SchemaRegistryClient({"url": args.registry.rstrip("/")})
    producer = SerializingProducer({
        "bootstrap.servers": args.bootstrap,
        "enable.idempotence": True,
        "key.serializer": StringSerializer("utf_8"),
        # Subject <topic>-value, as Hush's own services register it (and the newer "associated"
        # strategy's look-up is not part of a Confluent-compatible registry such as Apicurio).
        "value.serializer": AvroSerializer(
            registry, SCHEMA.read_text(),
            conf={"subject.name.strategy": topic_subject_name_strategy}),
    })
    delivered = {}

    def on_delivery(error, message):
        if error is not None:
            sys.exit(f"not acknowledged: {error}")
        delivered.update(partition=message.partition(), offset=message.offset())

    producer.produce(args.topic, key=f"{args.source}:{args.idempotency_key}",
                     value=signal_from(args), on_delivery=on_delivery)
    producer.flush(30)
    if not delivered:
        sys.exit("the broker did not acknowledge the signal within 30 s")
    print(json.dumps({"topic": args.topic, **delivered}))


if __name__ == "__main__":
    main()
