"""How fast the emulators answer the requests a fleet failover makes, one
after another and ten at once. Part of chaos/bench/fleet.sh: on two cores
the Python emulators answer one request at a time, so a request's service
time, times the requests a run makes, is a floor under any run however
parallel its requests are (AWS serves them in parallel).

Usage: python emulator_throughput.py FLEET.json  (the output of
`drover-chaos seed-fleet`; AWS_ENDPOINT_URL* select the emulators, not the
proxy)
"""
import concurrent.futures as cf
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


def main(path):
    fleet = json.load(open(path))["fleet"]
    dr, zone = fleet["dr_region"], fleet["hosted_zone"]
    rds, cw, r53 = client("rds", dr), client("cloudwatch", dr), client("route53", "us-east-1")
    zone_id = next(z["Id"] for z in r53.list_hosted_zones_by_name(DNSName=zone)["HostedZones"] if z["Name"] == zone + ".")
    dbs = fleet["databases"]
    now = datetime.datetime.now(datetime.timezone.utc)
    kinds = {
        "rds DescribeDBInstances": lambda db: rds.describe_db_instances(DBInstanceIdentifier=db["replica"]),
        "cloudwatch GetMetricStatistics": lambda db: cw.get_metric_statistics(
            Namespace="AWS/RDS", MetricName="ReplicaLag", Dimensions=[{"Name": "DBInstanceIdentifier", "Value": db["replica"]}],
            StartTime=now - datetime.timedelta(minutes=5), EndTime=now, Period=60, Statistics=["Maximum"]),
        "route53 ListResourceRecordSets": lambda db: r53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=db["record"], MaxItems="1"),
    }
    print(f"emulator service time ({len(dbs)} requests of each kind, straight to the emulators)")
    for name, call in kinds.items():
        call(dbs[0])  # connections open, caches warm
        t = time.monotonic()
        for db in dbs:
            call(db)
        one = (time.monotonic() - t) / len(dbs) * 1000
        t = time.monotonic()
        with cf.ThreadPoolExecutor(len(dbs)) as ex:
            list(ex.map(call, dbs))
        together = (time.monotonic() - t) * 1000
        print(f"  {name:<34} one after another {one:5.1f} ms each; {len(dbs)} at once {together:5.0f} ms in all ({together / len(dbs):5.1f} ms each)")


if __name__ == "__main__":
    main(sys.argv[1])
