"""The same fleet failover as runbooks/fleet-failover, written the way a user
would write it without drover: a plain, sequential boto3 script (check every
replica, then promote each, wait for it and repoint its record, then shift
the application). It is the baseline of chaos/bench/fleet.sh and nothing
else (no journal, no resume: a crash halfway leaves whatever it had done).

Usage: python fleet_boto3.py FLEET.json  (the output of `drover-chaos
seed-fleet`; AWS_ENDPOINT_URL* select the endpoints)
"""
import datetime
import json
import os
import sys
import time

import boto3


def client(service, region):
    env = "AWS_ENDPOINT_URL_" + service.upper().replace("ROUTE53", "ROUTE_53")
    endpoint = os.environ.get(env) or os.environ.get("AWS_ENDPOINT_URL")
    return boto3.client(service, region_name=region, endpoint_url=endpoint)


def wait_change(r53, change_id):
    while r53.get_change(Id=change_id)["ChangeInfo"]["Status"] != "INSYNC":
        time.sleep(1)


def main(path):
    fleet = json.load(open(path))["fleet"]
    primary_region, dr = fleet["primary_region"], fleet["dr_region"]
    zone, app_record = fleet["hosted_zone"], fleet["app_record"]
    started = time.monotonic()
    rds_dr = client("rds", dr)
    cw = client("cloudwatch", dr)
    r53 = client("route53", primary_region)
    zone_id = next(z["Id"] for z in r53.list_hosted_zones_by_name(DNSName=zone)["HostedZones"] if z["Name"] == zone + ".")

    # Check every replica before changing anything: available, a replica,
    # lag known and within 300 s.
    now = datetime.datetime.now(datetime.timezone.utc)
    for db in fleet["databases"]:
        replica = rds_dr.describe_db_instances(DBInstanceIdentifier=db["replica"])["DBInstances"][0]
        assert replica["DBInstanceStatus"] == "available", db
        points = cw.get_metric_statistics(
            Namespace="AWS/RDS", MetricName="ReplicaLag", Dimensions=[{"Name": "DBInstanceIdentifier", "Value": db["replica"]}],
            StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1), Period=60, Statistics=["Maximum"],
        )["Datapoints"]
        assert points and 0 <= max(p["Maximum"] for p in points) <= 300, db
    records = r53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=app_record)["ResourceRecordSets"]
    app = [r for r in records if r["Name"] == app_record + "." and "SetIdentifier" in r]
    assert any(r["SetIdentifier"] == dr for r in app)

    # One database after the other.
    endpoints = {}
    for db in fleet["databases"]:
        rds_dr.promote_read_replica(DBInstanceIdentifier=db["replica"])
        rds_dr.get_waiter("db_instance_available").wait(DBInstanceIdentifier=db["replica"], WaiterConfig={"Delay": 1})
        endpoint = rds_dr.describe_db_instances(DBInstanceIdentifier=db["replica"])["DBInstances"][0]["Endpoint"]["Address"]
        endpoints[db["record"]] = endpoint
        change = r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
            "Action": "UPSERT",
            "ResourceRecordSet": {"Name": db["record"], "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": endpoint}]},
        }]})
        wait_change(r53, change["ChangeInfo"]["Id"])

    changes = [{
        "Action": "UPSERT",
        "ResourceRecordSet": {
            "Name": app_record, "Type": r["Type"], "TTL": 60, "SetIdentifier": r["SetIdentifier"],
            "Weight": 100 if r["SetIdentifier"] == dr else 0, "ResourceRecords": r["ResourceRecords"],
        },
    } for r in app]
    change = r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    wait_change(r53, change["ChangeInfo"]["Id"])
    # RTO as drover measures it: from the start to traffic shifted.
    print(f"rto_ms={round((time.monotonic() - started) * 1000)}")

    # Read back what changed, as drover's verify does.
    for record, endpoint in endpoints.items():
        got = r53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=record, MaxItems="1")["ResourceRecordSets"]
        assert got and got[0]["ResourceRecords"][0]["Value"].rstrip(".") == endpoint, record


if __name__ == "__main__":
    main(sys.argv[1])
