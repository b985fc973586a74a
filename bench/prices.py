"""The ONE price table of the cost model: AWS us-east-1 on-demand list prices, no free tier.

Starting values from ``shared/design/PRICES.md`` (collected 2026-11). The lines marked "check" there
were re-checked on 2026-11-26 against stored copies of public pricing pages (the ``verified`` column
names the page; ``None`` = not re-checked, the PRICES.md value is used as given). Re-check before quoting
a figure outside this repository, and change a price here only, with its date and source.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_COLLECTED = "2026-11"
PRICES_CHECKED = "2026-11-26"
REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class Price:
    service: str
    unit: str
    usd: float  # USD per ``per`` units
    per: float
    source: str
    verified: str | None = None

    def cost(self, quantity: float) -> float:
        return quantity * self.usd / self.per


_AWS = "https://aws.amazon.com/{}/pricing/"

#: key -> price. Keys are what ``bench.cost`` counts.
PRICES: dict[str, Price] = {
    "lambda.requests": Price(
        "Lambda",
        "request",
        0.20,
        1e6,
        _AWS.format("lambda"),
        verified="git.mcrn.ar lambda_local_runner docs (cost table)",
    ),
    "lambda.gb_second.arm64": Price(
        "Lambda",
        "GB-second (arm64, first 7.5B GB-s/month)",
        0.0000133334,
        1,
        _AWS.format("lambda"),
        verified="cloudchipr.com/blog/aws-lambda-pricing; x86_64 0.0000166667 on the same page",
    ),
    "lambda.gb_second.x86_64": Price(
        "Lambda",
        "GB-second (x86_64, first 6B GB-s/month)",
        0.0000166667,
        1,
        _AWS.format("lambda"),
        verified="cloudchipr.com/blog/aws-lambda-pricing",
    ),
    "apigateway.http.requests": Price(
        "API Gateway",
        "HTTP API request (first 300M/month, 512 KB metering)",
        1.00,
        1e6,
        _AWS.format("api-gateway"),
        verified="learnaws.org/2021/01/10/api-gateway-pricing; apigatewaycost.com/aws",
    ),
    "apigateway.rest.requests": Price(
        "API Gateway",
        "REST API request (first 333M/month)",
        3.50,
        1e6,
        _AWS.format("api-gateway"),
        verified="awsforengineers.com/blog/aws-api-gateway-pricing-explained",
    ),
    "sqs.standard.requests": Price(
        "SQS",
        "standard queue request (per 64 KB chunk)",
        0.40,
        1e6,
        _AWS.format("sqs"),
        verified="cloudburn.io/blog/amazon-sqs-pricing (FIFO 0.50)",
    ),
    "sqs.fifo.requests": Price(
        "SQS", "FIFO queue request (per 64 KB chunk)", 0.50, 1e6, _AWS.format("sqs"), verified="cloudburn.io"
    ),
    "dynamodb.wru": Price(
        "DynamoDB",
        "on-demand write request unit (1 KB; transactional = 2)",
        0.625,
        1e6,
        _AWS.format("dynamodb"),
        verified="airbyte.com/data-engineering-resources/dynamodb-pricing (after the Nov 2024 cut)",
    ),
    "dynamodb.rru": Price(
        "DynamoDB",
        "on-demand read request unit (4 KB strong; eventual = 0.5)",
        0.125,
        1e6,
        _AWS.format("dynamodb"),
        verified="airbyte.com/data-engineering-resources/dynamodb-pricing",
    ),
    "stepfunctions.standard.transitions": Price(
        "Step Functions",
        "Standard state transition",
        0.025,
        1e3,
        _AWS.format("step-functions"),
        verified="docs.unusd.cloud/supported-services/stepfunctions; AWS compute blog ($25 per million)",
    ),
    "stepfunctions.express.requests": Price(
        "Step Functions",
        "Express request (+ duration, 64 MB / 100 ms steps)",
        1.00,
        1e6,
        _AWS.format("step-functions"),
        verified="AWS compute blog 'Building cost-effective AWS Step Functions workflows'",
    ),
    "stepfunctions.express.gb_second": Price(
        "Step Functions",
        "Express duration GB-second (64 MB minimum, 100 ms increments)",
        0.00001667,
        1,
        _AWS.format("step-functions"),
        verified=None,
    ),
    "events.custom": Price(
        "EventBridge",
        "custom event published (per 64 KB chunk)",
        1.00,
        1e6,
        _AWS.format("eventbridge"),
        verified="cloudburn.io/blog/amazon-eventbridge-pricing",
    ),
    "events.api_destination": Price(
        "EventBridge",
        "API destination delivery",
        0.20,
        1e6,
        _AWS.format("eventbridge"),
        verified="cloudburn.io/blog/amazon-eventbridge-pricing (not in PRICES.md; added for the OMS callback)",
    ),
    "scheduler.invocations": Price(
        "EventBridge Scheduler",
        "scheduled invocation",
        1.00,
        1e6,
        _AWS.format("eventbridge"),
        verified="cloudburn.io (14M/month free); one other page calls them free: not settled",
    ),
    "sns.publishes": Price(
        "SNS",
        "standard topic publish (per 64 KB chunk)",
        0.50,
        1e6,
        _AWS.format("sns"),
        verified="factualminds.com/blog/amazon-sns-pricing-publishes-fanout-protocols",
    ),
    "s3.put": Price(
        "S3",
        "Standard PUT/COPY/POST/LIST request",
        0.005,
        1e3,
        _AWS.format("s3"),
        verified="c3x.dev/blog/s3-request-fees-explained",
    ),
    "s3.get": Price(
        "S3", "Standard GET/HEAD request", 0.0004, 1e3, _AWS.format("s3"), verified="c3x.dev/blog/s3-request-fees"
    ),
    "s3.gb_month": Price("S3", "Standard storage GB-month (first 50 TB)", 0.023, 1, _AWS.format("s3"), verified=None),
    "kms.requests": Price("KMS", "API request", 0.03, 1e4, _AWS.format("kms"), verified=None),
    "secretsmanager.api_calls": Price(
        "Secrets Manager", "API call", 0.05, 1e4, _AWS.format("secrets-manager"), verified=None
    ),
    "secretsmanager.secret_month": Price(
        "Secrets Manager",
        "secret stored per month",
        0.40,
        1,
        _AWS.format("secrets-manager"),
        verified="hivebook.wiki/wiki/aws-secrets-manager-rotated-secrets-dynamic-db-credentials-kms (not in PRICES.md)",
    ),
    "ssm.standard.api": Price(
        "SSM Parameter Store", "standard parameter API interaction", 0.0, 1e4, _AWS.format("systems-manager"), None
    ),
    "logs.ingested_gb": Price(
        "CloudWatch Logs",
        "GB ingested (standard)",
        0.50,
        1,
        _AWS.format("cloudwatch"),
        verified="hykell.com/kb/platform-specific-guides/aws-cloudwatch-logs-pricing",
    ),
    "xray.traces": Price("X-Ray", "trace recorded", 5.00, 1e6, _AWS.format("xray"), verified=None),
}

#: What a peer charges per tracked shipment (USD, or CNY for 17TRACK), from PRICES.md.
PEERS: dict[str, dict[str, object]] = {
    "EasyPost": {"low": 0.02, "high": 0.02, "currency": "USD", "note": "tracker; USPS 0.03"},
    "AfterShip": {"low": 0.05, "high": 0.12, "currency": "USD", "note": "plan and overage"},
    "17TRACK": {"low": 0.01, "high": 0.03, "currency": "CNY", "note": "per number, annual plans"},
}
#: CNY per USD, approximate (2026); only used to put 17TRACK's range in dollars.
CNY_PER_USD = 7.1

#: Lambda platform log lines per invocation (START, END, REPORT) in bytes, ingested by CloudWatch Logs.
LAMBDA_PLATFORM_LOG_BYTES = 260
#: Express workflows: memory billed at least 64 MB (our state is a few KB), duration in 100 ms increments.
EXPRESS_BILLED_MB = 64
EXPRESS_INCREMENT_MS = 100


def price(key: str) -> Price:
    return PRICES[key]


def cost(key: str, quantity: float) -> float:
    return PRICES[key].cost(quantity)


def peer_usd(name: str) -> tuple[float, float]:
    """A peer's price range per shipment in USD."""
    peer = PEERS[name]
    low, high = float(str(peer["low"])), float(str(peer["high"]))
    if peer["currency"] == "CNY":
        return low / CNY_PER_USD, high / CNY_PER_USD
    return low, high


def table_markdown() -> str:
    lines = [
        f"| service | unit | USD | per | checked ({PRICES_CHECKED}) |",
        "|---|---|---|---|---|",
    ]
    for p in PRICES.values():
        lines.append(f"| {p.service} | {p.unit} | {p.usd:g} | {p.per:g} | {p.verified or 'PRICES.md value'} |")
    return "\n".join(lines)
