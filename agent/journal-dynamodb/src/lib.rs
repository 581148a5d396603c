//! drover's shared run store on DynamoDB, for agents in several regions.
//!
//! [`DynamoJournal`] implements [`drover_journal::Journal`], the trait the
//! embedded store implements, so the engine and the service do not know
//! which one they use. What it adds is what several agents sharing one
//! store need:
//!
//! - **Leases.** A claim lasts [`lease_ttl`](Journal::lease_ttl) unless
//!   renewed; the driver renews it (and every commit extends it). A driver
//!   that stops renewing (crashed, paused, cut off from the store) loses the
//!   run to the first agent that claims it after the lease ran out.
//! - **Fencing.** Every claim increments the run's fence. Every write of a
//!   driver is a conditional write on its fence, so a driver that lost its
//!   claim cannot write; [`check_lease`](Journal::check_lease), a strongly
//!   consistent read, is the fencing check the engine makes before every
//!   mutating AWS call.
//! - **One write decides each transition.** Only single-item conditional
//!   writes are used, never cross-item transactions, so the design holds on
//!   a DynamoDB global table in multi-Region strong consistency mode, which
//!   offers conditional writes and consistent reads but no transactions.
//!   A commit writes its chunk items (`log#V#PART`), then makes them count
//!   with one conditional update of the run item (`log_version` V-1 → V,
//!   fence unchanged); see [`log`]. A scope lock is one item naming its
//!   holder; see [`Journal::create_run`] below.
//!
//! Reads: the run item, gates and commit log are read with strongly
//! consistent reads (`ConsistentRead`). Listings (`drover runs`, every
//! pending approval, the takeover scan) go through the secondary index,
//! which is eventually consistent: a run created a moment ago may be missing
//! from a listing, never from a read by id, and every claim re-checks the
//! run item with a conditional write.

mod items;
pub mod log;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, ReturnValue,
    ScalarAttributeType, TableStatus,
};
use chrono::Utc;
use drover_journal::{
    Approval, AttemptRecord, CancelRequest, Created, Decision, Durability, Entry, Event, Journal, JournalError, Lease, NewRun, Op, Owner, Result, RunFilter,
    RunRecord,
};

use items::*;

/// Where the shared store is, and how long a claim lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoConfig {
    /// The table (created by [`DynamoJournal::init`], `drover store init`).
    pub table: String,
    /// Its region.
    pub region: String,
    /// How long a claim lasts without renewal: the longest a run waits for
    /// a survivor after its driver died.
    pub lease: Duration,
}

impl DynamoConfig {
    /// The default lease: 15 s.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
}

/// The shared store. Cheap to share (`Arc`); every call is a few DynamoDB
/// requests.
pub struct DynamoJournal {
    client: Client,
    config: DynamoConfig,
    /// The log version each claim of this process has reached, by run (a
    /// driver's commits are sequential).
    versions: Mutex<HashMap<String, (u64, u64)>>,
}

/// How many times a DynamoDB request is tried (throttling, 5xx, timeouts)
/// before the store reports it unavailable.
const MAX_ATTEMPTS: u32 = 8;

impl DynamoJournal {
    /// A store on `config.table` in `config.region`, with the standard AWS
    /// credential chain (and `AWS_ENDPOINT_URL_DYNAMODB`, for emulators).
    /// Does not check that the table exists (the first call says so).
    pub async fn open(config: DynamoConfig) -> Self {
        let retry = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(Duration::from_millis(50))
            .with_max_backoff(Duration::from_secs(2));
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_secs(30))
            .build();
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(config.region.clone()))
            .retry_config(retry)
            .timeout_config(timeouts)
            .load()
            .await;
        DynamoJournal { client: Client::new(&shared), config, versions: Mutex::new(HashMap::new()) }
    }

    /// The store's name in messages: `dynamodb table T in REGION`.
    pub fn name(&self) -> String {
        format!("dynamodb table '{}' in {}", self.config.table, self.config.region)
    }

    fn table(&self) -> &str {
        &self.config.table
    }

    /// Creates the table (on-demand capacity, keys and index as this store
    /// uses them) and waits until it is active. Returns `false` when it
    /// existed already with the right keys; an existing table with other
    /// keys is an error.
    pub async fn init(&self) -> Result<bool> {
        if let Ok(out) = self.client.describe_table().table_name(self.table()).send().await {
            let keys: Vec<String> = out.table().map(|t| t.key_schema().iter().map(|k| k.attribute_name().to_string()).collect()).unwrap_or_default();
            let index = out.table().is_some_and(|t| t.global_secondary_indexes().iter().any(|i| i.index_name() == Some(INDEX)));
            if keys != ["pk", "sk"] || !index {
                return Err(self.unavailable(format!(
                    "the table exists but is not a drover store (keys {keys:?}, index {INDEX}: {index}); \
                     pick another table name in the configuration's store setting"
                )));
            }
            return Ok(false);
        }
        let built = |e: aws_sdk_dynamodb::error::BuildError| self.unavailable(format!("the table definition is incomplete: {e}"));
        let attr = |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().map_err(built);
        let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(built);
        let index = GlobalSecondaryIndex::builder()
            .index_name(INDEX)
            .key_schema(key("g1pk", KeyType::Hash)?)
            .key_schema(key("g1sk", KeyType::Range)?)
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .map_err(built)?;
        self.client
            .create_table()
            .table_name(self.table())
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .attribute_definitions(attr("g1pk")?)
            .attribute_definitions(attr("g1sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .global_secondary_indexes(index)
            .send()
            .await
            .map_err(|e| self.sdk("CreateTable", e))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let out = self.client.describe_table().table_name(self.table()).send().await.map_err(|e| self.sdk("DescribeTable", e))?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(true);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(self.unavailable("the table was created but is not active after 120 s; check it in the console".into()));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn unavailable(&self, detail: String) -> JournalError {
        JournalError::Unavailable { store: self.name(), detail }
    }

    fn sdk<E, R>(&self, op: &str, e: SdkError<E, R>) -> JournalError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let what = match (e.code(), e.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            _ => DisplayErrorContext(&e).to_string(),
        };
        let detail = match e.code() {
            Some("ResourceNotFoundException") => {
                format!("{op}: the table does not exist; create it with `drover store init`")
            }
            Some("AccessDeniedException" | "UnrecognizedClientException") => {
                format!("{op} was refused ({what}); grant the agent's role dynamodb:GetItem, PutItem, UpdateItem and Query on the table and its index")
            }
            Some("ValidationException") => format!("{op} was rejected ({what})"),
            _ => format!("{op} failed, {MAX_ATTEMPTS} attempts made ({what}); the region's DynamoDB may be unreachable or throttling: the run stays resumable"),
        };
        self.unavailable(detail)
    }

    fn lease_expiry(&self) -> i64 {
        millis(Utc::now()) + self.config.lease.as_millis() as i64
    }

    async fn get(&self, key: Item) -> Result<Option<Item>> {
        let out = self.client.get_item().table_name(self.table()).set_key(Some(key)).consistent_read(true).send().await.map_err(|e| self.sdk("GetItem", e))?;
        Ok(out.item)
    }

    async fn get_run(&self, run_id: &str) -> Result<Option<Item>> {
        self.get(run_key(run_id)).await
    }

    /// Puts `item` if `condition` (with `values`) holds: `false` when it did not.
    async fn put_if(&self, item: Item, condition: &str, values: &[(&str, AttributeValue)]) -> Result<bool> {
        let put = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values((!values.is_empty()).then(|| placeholders(values)))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(self.sdk("PutItem", e)),
        }
    }

    /// Applies `update` to the item at `key` if `condition` (with `values`)
    /// holds: the item as it is after, or `None` when the condition did not hold.
    async fn update_if(&self, key: Item, update: &str, condition: &str, values: &[(&str, AttributeValue)]) -> Result<Option<Item>> {
        let out = self
            .client
            .update_item()
            .table_name(self.table())
            .set_key(Some(key))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_values((!values.is_empty()).then(|| placeholders(values)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(self.sdk("UpdateItem", e)),
        }
    }

    /// Every item of a query (all pages).
    async fn query(&self, index: Option<&str>, pk_name: &str, pk: &str, sk_prefix: Option<&str>, newest_first: bool) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let cond = match sk_prefix {
                Some(_) => format!("{pk_name} = :pk AND begins_with(sk, :p)"),
                None => format!("{pk_name} = :pk"),
            };
            let mut q = self
                .client
                .query()
                .table_name(self.table())
                .key_condition_expression(cond)
                .expression_attribute_values(":pk", s(pk))
                .scan_index_forward(!newest_first)
                .set_exclusive_start_key(start.take());
            if let Some(p) = sk_prefix {
                q = q.expression_attribute_values(":p", s(p));
            }
            q = match index {
                Some(i) => q.index_name(i),
                None => q.consistent_read(true),
            };
            let page = q.send().await.map_err(|e| self.sdk("Query", e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// The run's journal as its committed log folds up.
    async fn folded(&self, run_id: &str) -> Result<log::Folded> {
        let Some(run) = self.get_run(run_id).await? else { return Ok(log::Folded::default()) };
        let version = get_n(&run, "log_version")?;
        if version == 0 {
            return Ok(log::Folded::default());
        }
        let items = self.query(None, "pk", &run_pk(run_id), Some("log#"), false).await?;
        log::fold(&items, version)
    }

    /// The run holding `scope` now, if it has not ended, and the run id the
    /// lock names. A holder whose creator took the lock but has not (or
    /// never) put its run item is created here from the lock, exactly as its
    /// creator would have (a put that only succeeds once), so a lock always
    /// names a run that exists and the run it names is the one that runs.
    async fn scope_holder(&self, scope: &str, me: &str) -> Result<(Option<RunRecord>, Option<String>)> {
        let Some(lock) = self.get(scope_key(scope)).await? else { return Ok((None, None)) };
        let holder = get_s(&lock, "scope_holder").unwrap_or_default().to_string();
        if holder == me {
            // Taken by an earlier attempt of this very creation.
            return Ok((None, Some(holder)));
        }
        let item = match self.get_run(&holder).await? {
            Some(item) => item,
            None => {
                let doc: RunDoc = get_json(&lock, "scope_run")?.ok_or_else(|| JournalError::Malformed(format!("scope lock '{scope}' without its run")))?;
                let creation = get_s(&lock, "creation_id").unwrap_or_default().to_string();
                self.put_run(&doc, &creation).await?;
                self.get_run(&holder).await?.ok_or_else(|| JournalError::UnknownRun(holder.clone()))?
            }
        };
        let run = run_from_item(&item)?;
        Ok((if run.status.is_final() { None } else { Some(run) }, Some(holder)))
    }

    /// Puts a new run item unless one exists: `true` when this put (or an
    /// earlier attempt of the same creation, `creation`) made it.
    async fn put_run(&self, doc: &RunDoc, creation: &str) -> Result<bool> {
        let mut item = new_run_item(doc)?;
        item.insert("creation_id".into(), s(creation));
        if self.put_if(item, "attribute_not_exists(pk)", &[]).await? {
            return Ok(true);
        }
        let item = self.get_run(&doc.run_id).await?.ok_or_else(|| JournalError::UnknownRun(doc.run_id.clone()))?;
        Ok(get_s(&item, "creation_id") == Some(creation))
    }

    async fn take_scope(&self, scope: &str, doc: &RunDoc, creation: &str, previous: Option<&str>) -> Result<bool> {
        let mut item = scope_key(scope);
        item.insert("scope_holder".into(), s(&doc.run_id));
        item.insert("scope_run".into(), json(doc)?);
        item.insert("creation_id".into(), s(creation));
        item.insert("scope_at".into(), s(drover_journal::rfc3339(&Utc::now())));
        match previous {
            None => self.put_if(item, "attribute_not_exists(pk)", &[]).await,
            Some(p) => self.put_if(item, "scope_holder = :prev", &[(":prev", s(p))]).await,
        }
    }

    /// Claims `run_id` for `owner`: a conditional update of the run item (the
    /// fence, log version and lease read a moment before must be unchanged).
    /// Unless `force` (an operator's takeover), another owner's lease must
    /// have run out.
    async fn claim_as(&self, run_id: &str, owner: &Owner, force: bool) -> Result<Lease> {
        let id = nonce();
        for _ in 0..10 {
            let item = self.get_run(run_id).await?.ok_or_else(|| JournalError::UnknownRun(run_id.into()))?;
            let run = run_from_item(&item)?;
            if let Some(current) = &run.owner
                && !force
                && current != owner
                && !run.driver_gone(Utc::now())
            {
                return Err(JournalError::RunBusy { run_id: run_id.into(), host: current.host.clone(), pid: current.pid });
            }
            let fence = run.fence + 1;
            let version = get_n(&item, "log_version")?;
            let claimed = self
                .update_if(
                    run_key(run_id),
                    "SET run_owner = :o, run_fence = :f1, lease_ms = :exp, claim_id = :id",
                    "run_fence = :f0 AND log_version = :lv0 AND (attribute_not_exists(lease_ms) OR lease_ms = :l0)",
                    &[
                        (":o", json(owner)?),
                        (":f1", n(fence)),
                        (":f0", n(run.fence)),
                        (":lv0", n(version)),
                        (":l0", n(get_n(&item, "lease_ms")?)),
                        (":exp", n(self.lease_expiry())),
                        (":id", s(&id)),
                    ],
                )
                .await?
                .is_some();
            // Ours after all, when an earlier attempt of this request landed.
            if !claimed && self.get_run(run_id).await?.is_none_or(|now| get_s(&now, "claim_id") != Some(id.as_str())) {
                continue;
            }
            let lease = Lease { run_id: run_id.into(), fence };
            self.set_version(&lease, version);
            return Ok(lease);
        }
        Err(JournalError::RunBusy { run_id: run_id.into(), host: "another agent".into(), pid: 0 })
    }

    fn known_version(&self, lease: &Lease) -> Option<u64> {
        let versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        versions.get(&lease.run_id).filter(|(fence, _)| *fence == lease.fence).map(|(_, v)| *v)
    }

    fn set_version(&self, lease: &Lease, version: u64) {
        self.versions.lock().unwrap_or_else(|p| p.into_inner()).insert(lease.run_id.clone(), (lease.fence, version));
    }

    fn forget_version(&self, lease: &Lease) {
        self.versions.lock().unwrap_or_else(|p| p.into_inner()).remove(&lease.run_id);
    }

    fn lost(lease: &Lease) -> JournalError {
        JournalError::LeaseLost { run_id: lease.run_id.clone(), fence: lease.fence }
    }

    /// The log version `lease` commits after: known from its claim, or read.
    async fn version_for(&self, lease: &Lease) -> Result<u64> {
        if let Some(v) = self.known_version(lease) {
            return Ok(v);
        }
        let item = self.get_run(&lease.run_id).await?.ok_or_else(|| JournalError::UnknownRun(lease.run_id.clone()))?;
        if get_n(&item, "run_fence")? != lease.fence {
            return Err(Self::lost(lease));
        }
        let v = get_n(&item, "log_version")?;
        self.set_version(lease, v);
        Ok(v)
    }
}

/// `item` decoded by `decode`, or `None` (with a warning naming the item)
/// when it cannot be: one damaged item must not hide every other run or
/// gate from a listing (nor stop the takeover scan).
fn decoded<T>(item: &Item, decode: impl Fn(&Item) -> Result<T>) -> Option<T> {
    match decode(item) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(
                item = %describe_key(item),
                error = %e,
                "skipping an item of the run store that cannot be decoded; fix or delete it (the other runs are listed)"
            );
            None
        }
    }
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

/// Expression placeholders and their values, as the SDK takes them.
fn placeholders(values: &[(&str, AttributeValue)]) -> Item {
    values.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn nonce() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[async_trait]
impl Journal for DynamoJournal {
    /// The run item is created with a conditional put (absent), so one id is
    /// one run. With a scope, the lock item is taken first (a conditional put
    /// on the lock, absent or still naming the holder just read, which must
    /// have ended), carrying the whole new run; then the run item: of two
    /// creators for one scope, one takes the lock and the other finds it held
    /// and joins, creating the holder's run item from the lock if its creator
    /// has not yet (whichever put lands first makes it; the other finds it).
    async fn create_run(&self, run: &NewRun) -> Result<Created> {
        if let Some(item) = self.get_run(&run.run_id).await? {
            return Ok(Created::Existing(run_from_item(&item)?));
        }
        let doc = RunDoc {
            run_id: run.run_id.clone(),
            runbook: run.runbook.clone(),
            params: run.params.clone(),
            created_at: run.created_at,
            policy_override: run.policy_override.clone(),
            origin: run.origin.clone(),
            scope: run.scope.clone(),
        };
        let creation = nonce();
        if let Some(scope) = &run.scope {
            loop {
                let (holder, named) = self.scope_holder(scope, &run.run_id).await?;
                if let Some(holder) = holder {
                    return Ok(if holder.run_id == run.run_id { Created::Existing(holder) } else { Created::Joined(holder) });
                }
                if named.as_deref() == Some(run.run_id.as_str()) || self.take_scope(scope, &doc, &creation, named.as_deref()).await? {
                    break;
                }
            }
        }
        if self.put_run(&doc, &creation).await? {
            return Ok(Created::New);
        }
        let item = self.get_run(&run.run_id).await?.ok_or_else(|| JournalError::UnknownRun(run.run_id.clone()))?;
        Ok(Created::Existing(run_from_item(&item)?))
    }

    /// A conditional update of the run item: the fence and lease read a
    /// moment before must be unchanged, and the lease must have run out (or
    /// be this process's own).
    async fn claim(&self, run_id: &str, owner: &Owner) -> Result<Lease> {
        self.claim_as(run_id, owner, false).await
    }

    /// As [`claim`](Journal::claim), whatever the current lease.
    async fn take_over(&self, run_id: &str, owner: &Owner) -> Result<Lease> {
        self.claim_as(run_id, owner, true).await
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        self.forget_version(lease);
        // Refused when another driver holds the run now: nothing to give up.
        self.update_if(run_key(&lease.run_id), "REMOVE run_owner, lease_ms", "run_fence = :f", &[(":f", n(lease.fence))]).await?;
        Ok(())
    }

    fn lease_ttl(&self) -> Option<Duration> {
        Some(self.config.lease)
    }

    async fn renew(&self, lease: &Lease) -> Result<()> {
        let renewed = self
            .update_if(
                run_key(&lease.run_id),
                "SET lease_ms = :exp",
                "run_fence = :f AND attribute_exists(run_owner)",
                &[(":f", n(lease.fence)), (":exp", n(self.lease_expiry()))],
            )
            .await?;
        renewed.map(|_| ()).ok_or_else(|| Self::lost(lease))
    }

    async fn check_lease(&self, lease: &Lease) -> Result<()> {
        let item = self.get_run(&lease.run_id).await?.ok_or_else(|| JournalError::UnknownRun(lease.run_id.clone()))?;
        if get_n(&item, "run_fence")? != lease.fence {
            return Err(Self::lost(lease));
        }
        if !item.contains_key("run_owner") || get_n(&item, "lease_ms")? as i64 <= millis(Utc::now()) {
            return Err(JournalError::LeaseExpired { run_id: lease.run_id.clone(), fence: lease.fence });
        }
        Ok(())
    }

    /// Gates opened by the commit are put first (absent only: a gate opened
    /// again keeps its decision; a gate put by a commit that then failed is
    /// listed, and opened for real when the run reaches it again). Then the
    /// commit's chunks, each absent or left by an older fence. Then the one
    /// write that makes the commit count: the run item's `log_version` moves
    /// on by one, on condition that the fence and the version are the ones
    /// this driver holds; it also sets the status the commit changes. (Only
    /// [`renew`](Journal::renew) extends the lease: a commit retried late
    /// must not move the expiry back.)
    async fn commit(&self, lease: &Lease, ops: Vec<Op>, _durability: Durability) -> Result<()> {
        let version = self.version_for(lease).await?;
        for op in &ops {
            if let Op::OpenApproval { gate, message, requested_at, deadline } = op {
                let approval = Approval {
                    run_id: lease.run_id.clone(),
                    gate: gate.clone(),
                    message: message.clone(),
                    requested_at: *requested_at,
                    deadline: *deadline,
                    decision: None,
                };
                // Refused when the gate is open already: it keeps its decision.
                self.put_if(gate_item(&approval)?, "attribute_not_exists(pk)", &[]).await?;
            }
        }
        let id = nonce();
        for mut chunk in log::chunks(&lease.run_id, version + 1, lease.fence, &ops)? {
            chunk.insert("chunk_commit".into(), s(&id));
            // Absent, or left by an older driver that never made it count,
            // or this very request landing twice: never a committed chunk.
            let put =
                self.put_if(chunk, "attribute_not_exists(pk) OR chunk_fence < :f OR chunk_commit = :id", &[(":f", n(lease.fence)), (":id", s(&id))]).await;
            if !matches!(put, Ok(true)) {
                self.forget_version(lease);
                return Err(put.err().unwrap_or_else(|| Self::lost(lease)));
            }
        }
        let mut set = vec!["log_version = :v1", "commit_id = :id"];
        let mut remove = Vec::new();
        let mut values = vec![(":v1", n(version + 1)), (":v0", n(version)), (":f", n(lease.fence)), (":id", s(&id))];
        if let Some(Op::SetStatus { status, finished_at, result, error }) = ops.iter().rev().find(|o| matches!(o, Op::SetStatus { .. })) {
            set.extend(["run_status = :st", "g1pk = :g"]);
            values.extend([(":st", s(status.as_str())), (":g", s(runs_partition(*status)))]);
            for (attr, assign, placeholder, value) in [
                ("run_finished", "run_finished = :fin", ":fin", finished_at.as_ref().map(json).transpose()?),
                ("run_result", "run_result = :res", ":res", result.as_ref().map(|r| json(&capped_result(r))).transpose()?),
                ("run_error", "run_error = :err", ":err", error.as_ref().map(|e| json(&capped_error(e))).transpose()?),
            ] {
                match value {
                    Some(v) => {
                        set.push(assign);
                        values.push((placeholder, v));
                    }
                    None => remove.push(attr),
                }
            }
        }
        if let Some(Op::SetRunbook(r)) = ops.iter().rev().find(|o| matches!(o, Op::SetRunbook(_))) {
            set.push("run_runbook = :rb");
            values.push((":rb", json(r)?));
        }
        if ops.iter().any(|o| matches!(o, Op::ClearCancel)) {
            remove.push("cancel_req");
        }
        let mut expr = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expr.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let condition = "run_fence = :f AND log_version = :v0 AND attribute_exists(run_owner)";
        let counted = match self.update_if(run_key(&lease.run_id), &expr, condition, &values).await {
            Ok(Some(_)) => true,
            // An earlier attempt of this very request may have landed.
            Ok(None) => self.get_run(&lease.run_id).await?.is_some_and(|now| get_s(&now, "commit_id") == Some(id.as_str())),
            Err(e) => {
                // It may have landed: the next commit reads the version again.
                self.forget_version(lease);
                return Err(e);
            }
        };
        if !counted {
            self.forget_version(lease);
            return Err(Self::lost(lease));
        }
        self.set_version(lease, version + 1);
        Ok(())
    }

    async fn request_cancel(&self, run_id: &str, request: &CancelRequest) -> Result<RunRecord> {
        let recorded = self
            .update_if(
                run_key(run_id),
                "SET cancel_req = :c",
                "attribute_exists(pk) AND attribute_not_exists(cancel_req) AND g1pk = :active",
                &[(":c", json(&capped_cancel(request))?), (":active", s(RUNS_ACTIVE))],
            )
            .await?;
        // Refused: an earlier request, an ended run, or no such run.
        let item = match recorded {
            Some(item) => item,
            None => self.get_run(run_id).await?.ok_or_else(|| JournalError::UnknownRun(run_id.into()))?,
        };
        run_from_item(&item)
    }

    async fn request_pause(&self, run_id: &str, request: Option<&CancelRequest>) -> Result<RunRecord> {
        let condition = "attribute_exists(pk) AND g1pk = :active";
        let recorded = match request {
            Some(r) => {
                self.update_if(run_key(run_id), "SET pause_req = :p", condition, &[(":p", json(&capped_cancel(r))?), (":active", s(RUNS_ACTIVE))]).await?
            }
            None => self.update_if(run_key(run_id), "REMOVE pause_req", condition, &[(":active", s(RUNS_ACTIVE))]).await?,
        };
        // Refused: an ended run, or no such run.
        let item = match recorded {
            Some(item) => item,
            None => self.get_run(run_id).await?.ok_or_else(|| JournalError::UnknownRun(run_id.into()))?,
        };
        run_from_item(&item)
    }

    async fn decide(&self, run_id: &str, gate: &str, decision: &Decision) -> Result<Approval> {
        let recorded = self
            .update_if(
                gate_key(run_id, gate),
                "SET gate_decision = :d, g1pk = :decided",
                "attribute_exists(pk) AND attribute_not_exists(gate_decision)",
                &[(":d", json(&capped_decision(decision))?), (":decided", s(GATES_DECIDED))],
            )
            .await?;
        // Refused: decided already, or no such gate.
        let item = match recorded {
            Some(item) => item,
            None => self.get(gate_key(run_id, gate)).await?.ok_or_else(|| JournalError::UnknownGate { run_id: run_id.into(), gate: gate.into() })?,
        };
        gate_from_item(&item)
    }

    async fn approvals(&self, run_id: Option<&str>, pending_only: bool) -> Result<Vec<Approval>> {
        let items = match run_id {
            Some(id) => self.query(None, "pk", &run_pk(id), Some("gate#"), false).await?,
            None => {
                let mut all = self.query(Some(INDEX), "g1pk", GATES_PENDING, None, false).await?;
                if !pending_only {
                    all.extend(self.query(Some(INDEX), "g1pk", GATES_DECIDED, None, false).await?);
                }
                all
            }
        };
        let mut gates: Vec<Approval> = items.iter().filter_map(|item| decoded(item, gate_from_item)).collect();
        gates.retain(|g| !pending_only || g.decision.is_none());
        gates.sort_by(|a, b| (a.requested_at, &a.run_id, &a.gate).cmp(&(b.requested_at, &b.run_id, &b.gate)));
        Ok(gates)
    }

    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>> {
        self.get_run(run_id).await?.as_ref().map(run_from_item).transpose()
    }

    async fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>> {
        let partitions: &[&str] = match filter.status {
            None if filter.unfinished => &[RUNS_ACTIVE],
            None => &[RUNS_ACTIVE, RUNS_ENDED],
            Some(st) => &[runs_partition(st)],
        };
        let mut runs = Vec::new();
        for p in partitions {
            for item in self.query(Some(INDEX), "g1pk", p, None, true).await? {
                let Some(run) = decoded(&item, run_from_item) else { continue };
                if filter.status.is_none_or(|st| st == run.status)
                    && !(filter.unfinished && run.status.is_final())
                    && filter.runbook.as_ref().is_none_or(|n| run.runbook.name == *n)
                {
                    runs.push(run);
                }
            }
        }
        runs.sort_by(|a, b| (b.created_at, &b.run_id).cmp(&(a.created_at, &a.run_id)));
        if let Some(limit) = filter.limit {
            runs.truncate(limit);
        }
        Ok(runs)
    }

    async fn entries(&self, run_id: &str) -> Result<Vec<Entry>> {
        Ok(self.folded(run_id).await?.entries.into_values().collect())
    }

    async fn attempts(&self, run_id: &str) -> Result<Vec<AttemptRecord>> {
        Ok(self.folded(run_id).await?.attempts.into_values().collect())
    }

    async fn events(&self, run_id: &str) -> Result<Vec<Event>> {
        Ok(self.folded(run_id).await?.events)
    }
}

#[cfg(test)]
mod tests;
