//! The REST listener's metric series, kept per thread once registered: looking a counter and a
//! histogram up by their labels on every request costs a label vector, a hash and the registry's
//! lock each (the gRPC listener's lookups were 2 % of a call in `bench/profile.sh grpc`). The
//! series are the registry's own: a thread's cache holds handles, not values, so /metrics shows
//! the same series, registered on first use as before.

use std::{borrow::Cow, cell::RefCell, collections::HashMap, time::Duration};

struct Series {
    total: metrics::Counter,
    duration: metrics::Histogram,
}

thread_local! {
    /// (route template, method, status label) to its series. Bounded: routes, methods and the
    /// statuses the gateway sends are closed sets; an unusual status is not cached.
    static SERIES: RefCell<HashMap<(&'static str, &'static str, &'static str), Series>> =
        RefCell::new(HashMap::new());
    static IN_FLIGHT: metrics::Gauge = metrics::gauge!("http_requests_in_flight");
}

/// Counts and times one answered request.
pub(crate) fn record(route: &'static str, method: &'static str, status: Cow<'static, str>, latency: Duration) {
    let seconds = latency.as_secs_f64();
    let status = match status {
        Cow::Borrowed(status) => status,
        Cow::Owned(status) => {
            let labels =
                [("route", Cow::Borrowed(route)), ("method", Cow::Borrowed(method)), ("status", status.into())];
            metrics::counter!("http_requests_total", &labels).increment(1);
            metrics::histogram!("http_request_duration_seconds", &labels).record(seconds);
            return;
        }
    };
    SERIES.with_borrow_mut(|series| {
        let series = series.entry((route, method, status)).or_insert_with(|| {
            let labels = [("route", route), ("method", method), ("status", status)];
            Series {
                total: metrics::counter!("http_requests_total", &labels),
                duration: metrics::histogram!("http_request_duration_seconds", &labels),
            }
        });
        series.total.increment(1);
        series.duration.record(seconds);
    });
}

/// The REST listener's in-flight gauge.
pub(crate) fn in_flight() -> metrics::Gauge {
    IN_FLIGHT.with(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_series_are_the_registrys_and_unusual_statuses_still_count() {
        // A thread of its own: the cache is per thread, and this one must start empty.
        let text = std::thread::spawn(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::with_local_recorder(&recorder, || {
                for _ in 0..3 {
                    record("/gtg", "GET", Cow::Borrowed("200"), Duration::from_micros(50));
                }
                record("/gtg", "GET", Cow::Owned("418".into()), Duration::from_micros(50));
                in_flight().increment(1.0);
            });
            handle.render()
        })
        .join()
        .unwrap();
        assert!(text.contains(r#"http_requests_total{route="/gtg",method="GET",status="200"} 3"#), "{text}");
        assert!(text.contains(r#"http_requests_total{route="/gtg",method="GET",status="418"} 1"#), "{text}");
        assert!(
            text.contains(r#"http_request_duration_seconds_count{route="/gtg",method="GET",status="200"} 3"#),
            "{text}"
        );
        assert!(text.contains("http_requests_in_flight 1"), "{text}");
    }
}
