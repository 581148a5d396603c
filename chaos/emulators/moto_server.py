"""moto's server as drover's tests run it: moto 5.1.21 with its RDS read
replica promotion corrected to what AWS documents, and ECS services that
settle.

A green test against an emulator is worth what the emulator's truth is worth.
moto answers `PromoteReadReplica` but keeps the promoted instance's
`ReadReplicaSourceDBInstanceIdentifier` (and the source keeps listing it as a
replica), and it "promotes" an instance that is not a read replica at all.
AWS does neither: a promoted instance is standalone (no source, no longer in
its source's replica list), and promoting a non-replica is refused with
`InvalidDBInstanceState`. drover proves a failover by reading the source back,
so the emulator must tell the truth here.

moto's ECS services never run the tasks they are created with: a new
service has `runningCount` 0 (or `MOTO_ECS_SERVICE_RUNNING`) and all the
rest pending, for ever, and its deployment keeps the counts it was created
with and reports no `rolloutState`. AWS starts the tasks and settles: running
equals desired, none pending, one PRIMARY deployment whose rollout is
`COMPLETED`. drover waits for exactly that (`ecs.wait-stable`), so here a
service settles at once, when created and after each `UpdateService`.

Run as moto's own `moto_server`:
`python moto_server.py -H 127.0.0.1 -p PORT` (see scripts/emulators).
"""

import sys

from moto.core.utils import utcnow
from moto.ecs import models as ecs_models
from moto.rds import models as rds_models
from moto.rds.exceptions import RDSClientError
from moto.server import main


def _promote_read_replica(self, db_kwargs):
    database_id = db_kwargs["db_instance_identifier"]
    database = self.describe_db_instances(database_id)[0]
    if not database.is_replica:
        raise RDSClientError("InvalidDBInstanceState", "DB Instance is not a read replica.")
    source_id = database.source_db_instance_identifier
    database.is_replica = False
    database.update(**db_kwargs)
    if source_id:
        try:
            source = self.find_db_from_id(source_id)
        except RDSClientError:
            source = None
        if source is not None:
            for ref in (database.db_instance_arn, database.db_instance_identifier):
                if ref in source.replicas:
                    source.replicas.remove(ref)
    database.source_db_instance_identifier = None
    return database


rds_models.RDSBackend.promote_read_replica = _promote_read_replica


def _settle(service):
    """A service as AWS leaves it once its tasks run: running = desired,
    none pending, its one deployment COMPLETED with the same counts."""
    service.running_count = service.desired_count
    service.pending_count = 0
    for deployment in service.deployments:
        deployment.update(
            desiredCount=service.desired_count,
            runningCount=service.desired_count,
            pendingCount=0,
            failedTasks=0,
            rolloutState="COMPLETED",
            rolloutStateReason=f"ECS deployment {deployment.get('id')} completed.",
            updatedAt=utcnow(),
        )


_service_init = ecs_models.Service.__init__


def _settled_service_init(self, *args, **kwargs):
    _service_init(self, *args, **kwargs)
    _settle(self)


_update_service = ecs_models.EC2ContainerServiceBackend.update_service


def _settled_update_service(self, service_properties):
    service = _update_service(self, service_properties)
    _settle(service)
    return service


ecs_models.Service.__init__ = _settled_service_init
ecs_models.EC2ContainerServiceBackend.update_service = _settled_update_service

if __name__ == "__main__":
    sys.exit(main())
