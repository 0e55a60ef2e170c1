using AttrCloak.Streaming.Contracts;
using Prometheus;

namespace AttrCloak.Streaming.Monitoring;

/// <summary>
/// Every Prometheus metric the worker exports, in one place, so that dashboards and alert rules (deploy/) have one
/// list to match (a test checks the rules use only these names). All names start with <c>attrcloak_</c>. Labels
/// never carry a user id or an attribute value (class name): only event types, outcomes, reason codes, attribute
/// names and attacker names, all from closed sets.
/// One instance per worker, on its own <see cref="CollectorRegistry"/> (tests run several workers in one process).
/// </summary>
public sealed class WorkerMetrics
{
    /// <summary>Label values of <see cref="Events"/>' <c>type</c>.</summary>
    public static class EventTypes
    {
        public const string EmbeddingUpdate = "embedding_update";
        public const string OptOut = "opt_out";
        public const string Forget = "forget";
        public const string UpdateAttributes = "update_attributes";
        /// <summary>Could not be decoded, so its type is unknown.</summary>
        public const string Undecodable = "undecodable";
    }

    /// <summary>Label values of <see cref="Events"/>' <c>outcome</c>.</summary>
    public static class Outcomes
    {
        /// <summary>Changed the user's state and was published.</summary>
        public const string Applied = "applied";
        /// <summary>The same event was applied before (redelivery); nothing changed.</summary>
        public const string Duplicate = "duplicate";
        /// <summary>A newer version was applied before; nothing changed.</summary>
        public const string Stale = "stale";
        /// <summary>Sent to the dead-letter topic.</summary>
        public const string DeadLettered = "dead_lettered";
        /// <summary>An embedding update of a retired (or retiring) model generation: not applied, not served.</summary>
        public const string Retired = "retired";
    }

    /// <summary>The <c>action</c> labels of <see cref="SweepUsers"/>.</summary>
    public static class SweepActions
    {
        /// <summary>The stored cloak was published again as it is (it was made with the generation's current seating).</summary>
        public const string Republished = "republished";
        /// <summary>The user was re-cloaked from the stored original first (cloaked before the last seating).</summary>
        public const string Recloaked = "recloaked";
        /// <summary>A retiring generation's user with no newer embedding got a tombstone on the serving topic.</summary>
        public const string Tombstoned = "tombstoned";
        /// <summary>Nothing to publish: a newer generation serves the user (or they were forgotten meanwhile).</summary>
        public const string Skipped = "skipped";
    }

    public WorkerMetrics(CollectorRegistry? registry = null)
    {
        Registry = registry ?? Metrics.NewCustomRegistry();
        var factory = Metrics.WithCustomRegistry(Registry);

        Events = factory.CreateCounter("attrcloak_events_total",
            "Inbound events by type and outcome.", "type", "outcome");
        DeadLetters = factory.CreateCounter("attrcloak_dead_letters_total",
            "Messages sent to the dead-letter topic, by reason code.", "reason");
        Published = factory.CreateCounter("attrcloak_published_total",
            "Messages acknowledged on the serving topic: cloaked embeddings and forget tombstones.", "kind");
        FailClosed = factory.CreateCounter("attrcloak_fail_closed_total",
            "Privacy requests or updates that could not be applied: the user was not served (the event is retried or dead-lettered).", "type");
        RecloakLatency = factory.CreateHistogram("attrcloak_recloak_latency_seconds",
            "From the moment an event was consumed to the acknowledgement of its cloaked output (or tombstone).",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 14) });
        BatchSize = factory.CreateHistogram("attrcloak_batch_events",
            "Events per processed batch (one batch per poll).",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(1, 2, 12) });
        StageSeconds = factory.CreateCounter("attrcloak_stage_seconds_total",
            "Time spent per pipeline stage (decode, store_read, cloak, store_apply, produce, commit): where the time goes.", "stage");
        ConsumerLag = factory.CreateGauge("attrcloak_consumer_lag_messages",
            "Messages behind the partitions' high watermarks, summed over the assigned partitions of each input topic.", "topic");
        Ready = factory.CreateGauge("attrcloak_ready",
            "1 when the worker is ready (Kafka assigned, state store reachable and initialised), 0 otherwise.");
        StoreAvailable = factory.CreateGauge("attrcloak_store_up",
            "1 when the last state-store call succeeded, 0 while it fails (the worker retries with backoff).");
        StateMissing = factory.CreateGauge("attrcloak_state_missing",
            "1 while the state store's data is gone (Redis lost it; the worker serves nothing until it is rebuilt, see the worker's log), 0 otherwise.");
        KafkaAvailable = factory.CreateGauge("attrcloak_kafka_up",
            "1 while a Kafka broker is reachable, 0 after librdkafka reported all brokers down (the worker waits and reconnects).");
        StatisticsMinClassUsers = factory.CreateGauge("attrcloak_statistics_min_class_users",
            "Users in the smallest class of each protected attribute (served population): below the warm-up threshold the cloak is conservative.", "attribute");
        CloakerRefreshes = factory.CreateCounter("attrcloak_cloaker_refreshes_total",
            "Rebuilds of the per-class cloaking maps from the cached class statistics.");
        AssignedPartitions = factory.CreateGauge("attrcloak_assigned_partitions",
            "Input partitions this instance holds now, per input topic. Summed over the instances it must equal attrcloak_topic_partitions: less means partitions nobody consumes (a dead member whose session has not expired, or a long rebalance).", "topic");
        TopicPartitions = factory.CreateGauge("attrcloak_topic_partitions",
            "Partitions of each input topic, as the Kafka metadata says.", "topic");
        Rebalances = factory.CreateCounter("attrcloak_rebalances_total",
            "Consumer-group membership changes seen by this instance: partitions assigned, revoked, or lost (the session expired).", "event");

        GenerationInfo = factory.CreateGauge("attrcloak_generation_info",
            "1 for each model generation of the deployment with its life-cycle state (filling, serving, superseded, retiring).", "model_version", "state");
        GenerationUsers = factory.CreateGauge("attrcloak_generation_users",
            "Users with a stored embedding in each live model generation.", "model_version");
        GenerationSeatEpoch = factory.CreateGauge("attrcloak_generation_seat_epoch",
            "Seatings of each generation (batch AttrCloak-DF over its stored originals); 0 = not seated yet (cold start, or filling).", "model_version");
        GenerationCreated = factory.CreateGauge("attrcloak_generation_created_timestamp_seconds",
            "Unix time at which each generation's first embedding arrived.", "model_version");
        GenerationPromotable = factory.CreateGauge("attrcloak_generation_promotable",
            "1 when a filling (or unseated) generation meets the promotion thresholds, 0 while it waits for users.", "model_version");
        GenerationOutliers = factory.CreateGauge("attrcloak_generation_outliers",
            "Stored original embeddings of a generation outside its input domain as last learned (accepted before the domain existed); `attrcloak stats verify` lists them.", "model_version");
        DisplacementCapped = factory.CreateCounter("attrcloak_displacement_capped_total",
            "Served embeddings pulled back to the generation's displacement cap (AttrCloak:Input:MaxDisplacementRatio x its seated displacement): their class statistics would have moved them further, as poisoned statistics do.", "model_version");
        MapDisplacementRatio = factory.CreateHistogram("attrcloak_map_displacement_ratio",
            "How far the maps moved each newly cloaked user (before the displacement cap), over the generation's seated displacement (the 99th percentile right after its seating): about 1 and below for an honest population; a tail above AttrCloak:Input:MaxDisplacementRatio is what the cap pulls back (poisoned statistics, or a drifted model).",
            new HistogramConfiguration { LabelNames = ["model_version"], Buckets = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, 5, 10] });
        ServedNormRatio = factory.CreateHistogram("attrcloak_served_norm_ratio",
            "Norm of each newly served embedding over the norm of the user's original: near 1 for a healthy cloak; far above, the served embeddings leave the population's band.",
            new HistogramConfiguration { LabelNames = ["model_version"], Buckets = [0.5, 0.75, 0.9, 1, 1.1, 1.25, 1.5, 2, 3, 5, 10] });
        GenerationUnmigrated = factory.CreateGauge("attrcloak_generation_unmigrated_users",
            "Users of a superseded generation who have no embedding of a newer one yet: they keep being served the superseded generation's record (until it is retired: then a tombstone).", "model_version");
        SweepPending = factory.CreateGauge("attrcloak_sweep_pending_users",
            "Users of a generation this worker found still to sweep (publish again, re-cloak, or tombstone); 0 when its sweep is done.", "model_version");
        SweepActive = factory.CreateGauge("attrcloak_sweep_active",
            "1 while this worker sweeps a generation (scan not finished), 0 otherwise.", "model_version");
        SweepUsers = factory.CreateCounter("attrcloak_sweep_users_total",
            "Users handled by sweeps, by generation and action (republished, recloaked, tombstoned, skipped).", "model_version", "action");
        Seatings = factory.CreateCounter("attrcloak_seatings_total",
            "Seatings (batch AttrCloak-DF over a generation's stored originals) run by this worker, by outcome (success, failure, lease_lost).", "outcome");
        SeatingDuration = factory.CreateGauge("attrcloak_seating_duration_seconds",
            "Wall time of this worker's latest successful seating.");

        AuditBalancedAccuracy = factory.CreateGauge("attrcloak_audit_balanced_accuracy",
            "Latest shadow audit: balanced accuracy of each attacker on each protected attribute (cross-validated on the served sample).", "attribute", "attacker");
        AuditAuc = factory.CreateGauge("attrcloak_audit_auc",
            "Latest shadow audit: one-vs-rest macro AUC of each attacker on each protected attribute.", "attribute", "attacker");
        AuditAdvantage = factory.CreateGauge("attrcloak_audit_advantage",
            "Latest shadow audit: balanced accuracy minus chance (1 / classes) of each attacker on each attribute.", "attribute", "attacker");
        AuditWorstAdvantage = factory.CreateGauge("attrcloak_audit_worst_advantage",
            "Latest shadow audit: the worst |balanced accuracy - chance| over attackers and decision rules per attribute, in both directions; alert on this.", "attribute");
        AuditChance = factory.CreateGauge("attrcloak_audit_chance",
            "Chance balanced accuracy (1 / number of classes) per attribute.", "attribute");
        AuditSampleUsers = factory.CreateGauge("attrcloak_audit_sample_users",
            "Served users with a known class in the latest audit's sample, per attribute.", "attribute");
        AuditRuns = factory.CreateCounter("attrcloak_audit_runs_total",
            "Shadow audits run, by outcome (success, failure, skipped: too few users).", "outcome");
        AuditDuration = factory.CreateGauge("attrcloak_audit_duration_seconds",
            "Wall time of the latest successful shadow audit.");
        AuditLastSuccess = factory.CreateGauge("attrcloak_audit_last_success_timestamp_seconds",
            "Unix time of the latest successful shadow audit (0 before the first).");
        AuditAge = factory.CreateGauge("attrcloak_audit_age_seconds",
            "Seconds since the latest successful shadow audit (since start-up before the first); updated at every scrape.");
        AuditFailing = factory.CreateGauge("attrcloak_audit_failing",
            "1 while the latest shadow audit attempt failed (an exception: see the worker log and /healthz/ready), 0 after a successful or skipped one.");

        _startedAt = DateTimeOffset.UtcNow;
        Registry.AddBeforeCollectCallback(() =>
        {
            var last = _lastAudit ?? _startedAt;
            AuditAge.Set((DateTimeOffset.UtcNow - last).TotalSeconds);
        });

        // Pre-create the closed label sets, so that dashboards and alerts see zeros instead of absent series.
        foreach (var reason in ReasonCodes.All)
            DeadLetters.WithLabels(reason.Label());
        foreach (var type in new[] { EventTypes.EmbeddingUpdate, EventTypes.OptOut, EventTypes.Forget, EventTypes.UpdateAttributes })
            foreach (var outcome in new[] { Outcomes.Applied, Outcomes.Duplicate, Outcomes.Stale, Outcomes.DeadLettered })
                Events.WithLabels(type, outcome);
        Events.WithLabels(EventTypes.EmbeddingUpdate, Outcomes.Retired);
        foreach (var outcome in new[] { "success", "failure", "lease_lost" })
            Seatings.WithLabels(outcome);
        Events.WithLabels(EventTypes.Undecodable, Outcomes.DeadLettered);
        Published.WithLabels("cloaked");
        Published.WithLabels("tombstone");
        foreach (var outcome in new[] { "success", "failure", "skipped" })
            AuditRuns.WithLabels(outcome);
        foreach (var kind in new[] { "assigned", "revoked", "lost" })
            Rebalances.WithLabels(kind);
    }

    private readonly DateTimeOffset _startedAt;
    private DateTimeOffset? _lastAudit;

    /// <summary>The registry these metrics live in; serve it on /metrics.</summary>
    public CollectorRegistry Registry { get; }

    public Counter Events { get; }
    public Counter DeadLetters { get; }
    public Counter Published { get; }
    public Counter FailClosed { get; }
    public Histogram RecloakLatency { get; }
    public Histogram BatchSize { get; }
    public Counter StageSeconds { get; }
    public Gauge ConsumerLag { get; }
    public Gauge Ready { get; }
    public Gauge StoreAvailable { get; }
    public Gauge StateMissing { get; }
    public Gauge KafkaAvailable { get; }
    public Gauge StatisticsMinClassUsers { get; }
    public Counter CloakerRefreshes { get; }
    public Gauge AssignedPartitions { get; }
    public Gauge TopicPartitions { get; }
    public Counter Rebalances { get; }
    public Gauge GenerationInfo { get; }
    public Gauge GenerationUsers { get; }
    public Gauge GenerationSeatEpoch { get; }
    public Gauge GenerationCreated { get; }
    public Gauge GenerationPromotable { get; }
    public Gauge GenerationUnmigrated { get; }
    public Gauge GenerationOutliers { get; }
    public Counter DisplacementCapped { get; }
    public Histogram MapDisplacementRatio { get; }
    public Histogram ServedNormRatio { get; }
    public Gauge SweepPending { get; }
    public Gauge SweepActive { get; }
    public Counter SweepUsers { get; }
    public Counter Seatings { get; }
    public Gauge SeatingDuration { get; }
    public Gauge AuditBalancedAccuracy { get; }
    public Gauge AuditAuc { get; }
    public Gauge AuditAdvantage { get; }
    public Gauge AuditWorstAdvantage { get; }
    public Gauge AuditChance { get; }
    public Gauge AuditSampleUsers { get; }
    public Counter AuditRuns { get; }
    public Gauge AuditDuration { get; }
    public Gauge AuditLastSuccess { get; }
    public Gauge AuditAge { get; }
    public Gauge AuditFailing { get; }

    /// <summary>Records a successful audit's time (for <see cref="AuditAge"/> and <see cref="AuditLastSuccess"/>).</summary>
    public void MarkAuditSucceeded(DateTimeOffset at)
    {
        _lastAudit = at;
        AuditLastSuccess.Set(at.ToUnixTimeMilliseconds() / 1000.0);
    }

    /// <summary>The <see cref="Events"/> type label of an inbound event.</summary>
    public static string TypeLabel(InboundEvent inbound) => inbound switch
    {
        EmbeddingUpdate => EventTypes.EmbeddingUpdate,
        PrivacyRequest { Type: PrivacyRequestType.OptOut } => EventTypes.OptOut,
        PrivacyRequest { Type: PrivacyRequestType.Forget } => EventTypes.Forget,
        PrivacyRequest { Type: PrivacyRequestType.UpdateAttributes } => EventTypes.UpdateAttributes,
        _ => EventTypes.Undecodable,
    };
}
