"""The same regional failover as runbooks/regional-failover, written the way
a user would write it without drover: a plain, sequential boto3 script. It is
the baseline of chaos/bench/failover.sh and nothing else (no journal, no
resume: a crash halfway leaves whatever it had done).

Usage: python failover_boto3.py RUN_ID  (AWS_ENDPOINT_URL* select the endpoints)
"""
import os
import sys
import time

import boto3

PRIMARY, DR = "us-east-1", "us-west-2"
DB, REPLICA = "orders-db", "orders-db-replica"
ZONE, DB_RECORD, APP_RECORD = "orders.example.internal", "db.orders.example.internal", "app.orders.example.internal"


def client(service, region):
    env = "AWS_ENDPOINT_URL_" + service.upper()
    endpoint = os.environ.get(env) or os.environ.get("AWS_ENDPOINT_URL")
    return boto3.client(service, region_name=region, endpoint_url=endpoint)


def wait_change(r53, change_id):
    while r53.get_change(Id=change_id)["ChangeInfo"]["Status"] != "INSYNC":
        time.sleep(1)


def main(run_id):
    started = time.monotonic()
    rds_primary, rds_dr = client("rds", PRIMARY), client("rds", DR)
    r53 = client("route53", PRIMARY)
    replica = rds_dr.describe_db_instances(DBInstanceIdentifier=REPLICA)["DBInstances"][0]
    assert replica["DBInstanceStatus"] == "available"
    zone_id = next(z["Id"] for z in r53.list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"] if z["Name"] == ZONE + ".")
    records = r53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=APP_RECORD)["ResourceRecordSets"]
    app = [r for r in records if r["Name"] == APP_RECORD + "." and "SetIdentifier" in r]
    primary = rds_primary.describe_db_instances(DBInstanceIdentifier=DB)["DBInstances"][0]

    snap = f"{DB}-final-{run_id}"
    arn = rds_primary.create_db_snapshot(DBInstanceIdentifier=DB, DBSnapshotIdentifier=snap)["DBSnapshot"]["DBSnapshotArn"]
    rds_primary.get_waiter("db_snapshot_available").wait(DBSnapshotIdentifier=snap, WaiterConfig={"Delay": 1})
    rds_dr.copy_db_snapshot(SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier=snap + "-dr")

    rds_dr.promote_read_replica(DBInstanceIdentifier=REPLICA)
    rds_dr.get_waiter("db_instance_available").wait(DBInstanceIdentifier=REPLICA, WaiterConfig={"Delay": 1})
    endpoint = rds_dr.describe_db_instances(DBInstanceIdentifier=REPLICA)["DBInstances"][0]["Endpoint"]["Address"]

    change = r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
        "Action": "UPSERT",
        "ResourceRecordSet": {"Name": DB_RECORD, "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": endpoint}]},
    }]})
    wait_change(r53, change["ChangeInfo"]["Id"])
    changes = [{
        "Action": "UPSERT",
        "ResourceRecordSet": {
            "Name": APP_RECORD, "Type": "CNAME", "TTL": 60, "SetIdentifier": r["SetIdentifier"],
            "Weight": 100 if r["SetIdentifier"] == DR else 0, "ResourceRecords": r["ResourceRecords"],
        },
    } for r in app]
    change = r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    wait_change(r53, change["ChangeInfo"]["Id"])
    # RTO as drover measures it: from the start to DNS shifted.
    print(f"rto_ms={round((time.monotonic() - started) * 1000)}")

    records = r53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=DB_RECORD)["ResourceRecordSets"]
    assert any(r["Name"] == DB_RECORD + "." and r["ResourceRecords"][0]["Value"].rstrip(".") == endpoint for r in records)
    assert primary["DBInstanceStatus"] == "available"


if __name__ == "__main__":
    main(sys.argv[1])
