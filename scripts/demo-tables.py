"""Create the demo's sample tables in a DynamoDB endpoint, with every attribute type.

Usage: demo-tables.py ENDPOINT PREFIX
Tables (all under PREFIX): orders (provisioned, sort key, a GSI and an LSI), users
(on-demand), blobs (items near DynamoDB's 400 KB limit), empty (no items).
"""
import random
import sys

import boto3

endpoint, prefix = sys.argv[1], sys.argv[2]
ddb = boto3.client(
    "dynamodb",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="demo",
    aws_secret_access_key="demo",
)
rng = random.Random(42)


def create(name, keys, billing="PROVISIONED", gsi=None, lsi=None):
    try:
        ddb.describe_table(TableName=name)
        exists = True
    except ddb.exceptions.ResourceNotFoundException:
        exists = False
    if exists:
        ddb.delete_table(TableName=name)
        ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    args = dict(
        TableName=name,
        KeySchema=[{"AttributeName": k, "KeyType": kt} for k, kt, _ in keys],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": t} for k, _, t in keys],
        BillingMode=billing,
    )
    if billing == "PROVISIONED":
        args["ProvisionedThroughput"] = {"ReadCapacityUnits": 500, "WriteCapacityUnits": 500}
    if gsi:
        args["GlobalSecondaryIndexes"] = gsi
    if lsi:
        args["LocalSecondaryIndexes"] = lsi
    ddb.create_table(**args)
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})


def number():
    kind = rng.randrange(4)
    if kind == 0:
        return str(rng.randrange(-10**6, 10**6))
    if kind == 1:
        return "".join(rng.choice("123456789") for _ in range(38))  # 38 significant digits
    if kind == 2:
        return f"{rng.randrange(1, 10)}.{rng.randrange(10**8)}E-{rng.randrange(1, 130)}"
    return f"-{rng.randrange(1, 10)}.5E+{rng.randrange(1, 125)}"


def value(depth=0):
    kind = rng.randrange(10 if depth < 3 else 7)
    if kind == 0:
        return {"S": "".join(rng.choice("abc ünï✓\"\\\n\t") for _ in range(rng.randrange(0, 20)))}
    if kind == 1:
        return {"N": number()}
    if kind == 2:
        return {"B": bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))}
    if kind == 3:
        return {"BOOL": rng.random() < 0.5}
    if kind == 4:
        return {"NULL": True}
    if kind == 5:
        return {"SS": sorted({f"tag{rng.randrange(100)}" for _ in range(rng.randrange(1, 5))})}
    if kind == 6:
        return {"NS": sorted({str(rng.randrange(1000)) for _ in range(rng.randrange(1, 5))})}
    if kind == 7:
        return {"BS": [bytes([i, rng.randrange(256)]) for i in range(rng.randrange(1, 4))]}
    if kind == 8:
        return {"L": [value(depth + 1) for _ in range(rng.randrange(0, 4))]}
    return {"M": {f"k{i}": value(depth + 1) for i in range(rng.randrange(0, 4))}}


def put_all(table, items):
    for i in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": it}} for it in items[i : i + 25]]
        while requests:
            out = ddb.batch_write_item(RequestItems={table: requests})
            requests = out.get("UnprocessedItems", {}).get(table, [])


orders = prefix + "orders"
try:
    ddb.delete_table(TableName=orders)
    ddb.get_waiter("table_not_exists").wait(TableName=orders, WaiterConfig={"Delay": 1})
except ddb.exceptions.ResourceNotFoundException:
    pass
ddb.create_table(
    TableName=orders,
    KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"}, {"AttributeName": "order", "KeyType": "RANGE"}],
    AttributeDefinitions=[
        {"AttributeName": "customer", "AttributeType": "S"},
        {"AttributeName": "order", "AttributeType": "N"},
        {"AttributeName": "status", "AttributeType": "S"},
        {"AttributeName": "placed", "AttributeType": "N"},
    ],
    BillingMode="PROVISIONED",
    ProvisionedThroughput={"ReadCapacityUnits": 500, "WriteCapacityUnits": 500},
    GlobalSecondaryIndexes=[
        {
            "IndexName": "by-status",
            "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
            "ProvisionedThroughput": {"ReadCapacityUnits": 50, "WriteCapacityUnits": 50},
        }
    ],
    LocalSecondaryIndexes=[
        {
            "IndexName": "by-placed",
            "KeySchema": [{"AttributeName": "customer", "KeyType": "HASH"}, {"AttributeName": "placed", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
)
ddb.get_waiter("table_exists").wait(TableName=orders, WaiterConfig={"Delay": 1})
put_all(
    orders,
    [
        {
            "customer": {"S": f"customer-{i % 97:03}"},
            "order": {"N": str(i)},
            "status": {"S": rng.choice(["new", "paid", "shipped"])},
            "placed": {"N": str(1700000000 + i)},
            "total": {"N": number()},
            "lines": {"L": [value() for _ in range(rng.randrange(1, 4))]},
            "extra": value(),
            "note": {"S": ""},
        }
        for i in range(3000)
    ],
)

users = prefix + "users"
create(users, [("id", "HASH", "S")], billing="PAY_PER_REQUEST")
put_all(
    users,
    [
        {"id": {"S": f"user-{i:05}"}, "名前": {"S": f"ユーザー{i}"}, **{f"a{j}": value() for j in range(8)}}
        for i in range(1000)
    ],
)

blobs = prefix + "blobs"
create(blobs, [("id", "HASH", "B")])
put_all(
    blobs,
    [{"id": {"B": bytes([i, 0, 255])}, "data": {"B": bytes(rng.randrange(256) for _ in range(390 * 1024))}} for i in range(12)],
)

create(prefix + "empty", [("id", "HASH", "N")])

# Six more, for ten tables of mixed keys, billing modes and settings.
sessions = prefix + "sessions"
create(sessions, [("token", "HASH", "S")], billing="PAY_PER_REQUEST")
put_all(sessions, [{"token": {"S": f"t{i:04}"}, "expires": {"N": str(1800000000 + i)}, "user": value()} for i in range(400)])

metrics = prefix + "metrics"
create(metrics, [("host", "HASH", "N"), ("at", "RANGE", "S")])
put_all(metrics, [{"host": {"N": str(i % 13)}, "at": {"S": f"2026-11-{i % 28 + 1:02}T{i % 24:02}:00"}, "v": {"N": number()}, "tags": value()} for i in range(800)])

files = prefix + "files"
create(files, [("bucket", "HASH", "S"), ("digest", "RANGE", "B")])
put_all(files, [{"bucket": {"S": f"b{i % 5}"}, "digest": {"B": bytes(rng.randrange(256) for _ in range(16))}, "size": {"N": str(rng.randrange(10**12))}} for i in range(300)])

ledger = prefix + "ledger"
create(ledger, [("entry", "HASH", "N")], billing="PAY_PER_REQUEST")
put_all(ledger, [{"entry": {"N": str(i)}, "amount": {"N": number()}, "memo": {"S": "" if i % 3 else "paid"}, "refs": {"NS": [str(i), str(i + 1)]}} for i in range(600)])

profiles = prefix + "profiles"
create(profiles, [("id", "HASH", "S")])
put_all(profiles, [{"id": {"S": f"p{i}"}, **{f"f{j}": value() for j in range(20)}} for i in range(200)])

audit = prefix + "audit"
create(audit, [("day", "HASH", "S"), ("seq", "RANGE", "N")])
put_all(audit, [{"day": {"S": f"2026-11-{i % 30 + 1:02}"}, "seq": {"N": str(i)}, "who": {"S": f"user-{i % 17}"}, "what": {"L": [value(), value()]}} for i in range(500)])

print(
    f"created 10 tables under {prefix}: orders (3000 items, GSI + LSI), users (1000, on demand), "
    "blobs (12 near 400 KB), empty, sessions, metrics, files (binary sort key), ledger, profiles, audit",
    file=sys.stderr,
)
