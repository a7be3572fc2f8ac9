//! Aggregation state shared by rollups and queries.

/// Summary of the points in one bucket: enough to answer avg/min/max/first/last/count/sum, and
/// to be merged with another summary (which is how rollups of a minute or an hour are combined
/// into the buckets a query asks for).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agg {
    /// Number of points.
    pub count: u64,
    /// Sum of the values (for the average).
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Timestamp of the earliest point.
    pub first_ts_ms: i64,
    /// Value of the earliest point.
    pub first: f64,
    /// Timestamp of the latest point.
    pub last_ts_ms: i64,
    /// Value of the latest point (for indexes: the counter reading at the end of the bucket).
    pub last: f64,
}

impl Agg {
    /// The summary of a single point.
    pub fn of_point(ts_ms: i64, value: f64) -> Agg {
        Agg {
            count: 1,
            sum: value,
            min: value,
            max: value,
            first_ts_ms: ts_ms,
            first: value,
            last_ts_ms: ts_ms,
            last: value,
        }
    }

    /// Mean value.
    pub fn avg(&self) -> f64 {
        self.sum / self.count as f64
    }

    /// Folds `other` into `self` (order-independent for first/last: timestamps decide).
    pub fn merge(&mut self, other: &Agg) {
        self.count += other.count;
        self.sum += other.sum;
        if other.min < self.min {
            self.min = other.min;
        }
        if other.max > self.max {
            self.max = other.max;
        }
        if other.first_ts_ms < self.first_ts_ms {
            self.first_ts_ms = other.first_ts_ms;
            self.first = other.first;
        }
        if other.last_ts_ms >= self.last_ts_ms {
            self.last_ts_ms = other.last_ts_ms;
            self.last = other.last;
        }
    }

    /// Picks one number out of the summary.
    pub fn get(&self, agg: Aggregator) -> f64 {
        match agg {
            Aggregator::Avg => self.avg(),
            Aggregator::Min => self.min,
            Aggregator::Max => self.max,
            Aggregator::First => self.first,
            Aggregator::Last => self.last,
            Aggregator::Sum => self.sum,
            Aggregator::Count => self.count as f64,
        }
    }
}

/// Merges into an optional accumulator.
pub(crate) fn fold(acc: &mut Option<Agg>, a: &Agg) {
    match acc {
        Some(x) => x.merge(a),
        None => *acc = Some(*a),
    }
}

/// Per-bucket reduction a downsampling query applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregator {
    /// Arithmetic mean.
    Avg,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Value of the earliest point.
    First,
    /// Value of the latest point.
    Last,
    /// Sum of values.
    Sum,
    /// Number of points.
    Count,
}

impl Aggregator {
    /// Parses the OpenTSDB spelling (`avg`, `min`, `max`, `first`, `last`, `sum`, `count`).
    pub fn parse(s: &str) -> Option<Aggregator> {
        Some(match s {
            "avg" => Aggregator::Avg,
            "min" => Aggregator::Min,
            "max" => Aggregator::Max,
            "first" => Aggregator::First,
            "last" => Aggregator::Last,
            "sum" => Aggregator::Sum,
            "count" => Aggregator::Count,
            _ => return None,
        })
    }
}
