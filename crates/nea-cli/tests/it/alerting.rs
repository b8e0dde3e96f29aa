//! SPEC §14, alerting and dashboards: the Prometheus rules in
//! `contrib/prometheus/` pass `promtool check rules` and their own unit
//! tests (`promtool test rules`), every alert is tested firing and not
//! firing, the Grafana dashboard in `contrib/grafana/` is well formed and
//! its queries are valid PromQL, and every metric the rules and the
//! dashboard name is in a live scrape of the real server.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::PATIENCE;
use crate::common::{get, start_with_admin};
use yaml::Read as _;

const RULES: &str = "contrib/prometheus/nea.rules.yml";
const RULE_TESTS: &str = "contrib/prometheus/nea.rules.test.yml";
const DASHBOARD: &str = "contrib/grafana/nea.json";

/// A file of the repository, by its path from the root.
fn repo_file(path: &str) -> PathBuf {
    crate::common::repository().join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|err| panic!("read {path}: {err}"))
}

/// Runs `promtool args` from the repository's root. Without promtool the
/// test fails with one line saying how to get it, not a spawn error.
fn promtool(args: &[&str]) -> Output {
    match Command::new("promtool")
        .args(args)
        .current_dir(crate::common::repository())
        .output()
    {
        Ok(output) => output,
        Err(err) if err.kind() == ErrorKind::NotFound => panic!(
            "promtool is not installed; scripts/setup.sh installs it (Debian package prometheus)"
        ),
        Err(err) => panic!("promtool {args:?} could not run: {err}"),
    }
}

/// `promtool args` must succeed; returns its standard output.
fn promtool_succeeds(args: &[&str]) -> String {
    let output = promtool(args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "promtool {}: {}\n{stdout}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_rules_pass_promtool_and_their_unit_tests() {
    let checked = promtool_succeeds(&["check", "rules", RULES]);
    // promtool counts the rules it read; so does the reader the other tests
    // use, and the two must agree.
    let rules = alert_rules();
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", rules.len())),
        "promtool and this file's reader disagree on the rules:\n{checked}"
    );
    promtool_succeeds(&["test", "rules", RULE_TESTS]);
}

/// One alerting rule, as the tests need it.
#[derive(Debug)]
struct AlertRule {
    name: String,
    severity: String,
    expr: String,
}

/// The alerting rules of [`RULES`], after checking that each has what an
/// alert must carry.
fn alert_rules() -> Vec<AlertRule> {
    let file = yaml::parse(&read(RULES));
    let groups = file.get("groups").map(yaml::Read::list).unwrap_or_default();
    assert_eq!(groups.len(), 1, "one group of rules");
    let mut rules = Vec::new();
    for rule in groups[0]
        .get("rules")
        .map(yaml::Read::list)
        .unwrap_or_default()
    {
        let field = |path: &[&str]| {
            path.iter()
                .try_fold(rule, |node, key| node.get(key))
                .and_then(yaml::Read::text)
                .unwrap_or_default()
                .to_owned()
        };
        let name = field(&["alert"]);
        assert!(
            name.strip_prefix("Nea").is_some_and(|rest| {
                rest.starts_with(|c: char| c.is_ascii_uppercase())
                    && rest.chars().all(|c| c.is_ascii_alphanumeric())
            }),
            "{rule:?}: an alert's name is CamelCase and starts with Nea"
        );
        let severity = field(&["labels", "severity"]);
        assert!(
            severity == "critical" || severity == "warning",
            "{name}: severity is critical or warning, not {severity:?}"
        );
        assert!(
            !field(&["annotations", "summary"]).is_empty(),
            "{name}: no summary"
        );
        let description = field(&["annotations", "description"]);
        assert!(
            description.contains("{{ $labels.instance }}") && description.contains("$value"),
            "{name}: the description names the instance and the value: {description:?}"
        );
        let expr = field(&["expr"]);
        assert!(!expr.is_empty(), "{name}: no expr");
        rules.push(AlertRule {
            name,
            severity,
            expr,
        });
    }
    assert!(!rules.is_empty(), "no alerting rules in {RULES}");
    rules
}

/// One `alert_rule_test` case: the alert it evaluates and the severities
/// of the alerts it expects to fire.
#[derive(Debug)]
struct AlertCase {
    group: String,
    alertname: String,
    firing: Vec<String>,
}

/// Every `alert_rule_test` case of [`RULE_TESTS`].
fn alert_cases() -> Vec<AlertCase> {
    let file = yaml::parse(&read(RULE_TESTS));
    let rule_files: Vec<_> = file
        .get("rule_files")
        .map(yaml::Read::list)
        .unwrap_or_default()
        .into_iter()
        .filter_map(yaml::Read::text)
        .collect();
    assert_eq!(rule_files, ["nea.rules.yml"], "the tests load the rules");
    let mut cases = Vec::new();
    for group in file.get("tests").map(yaml::Read::list).unwrap_or_default() {
        let group_name = group
            .get("name")
            .and_then(yaml::Read::text)
            .unwrap_or_default();
        for case in group
            .get("alert_rule_test")
            .map(yaml::Read::list)
            .unwrap_or_default()
        {
            let alertname = case
                .get("alertname")
                .and_then(yaml::Read::text)
                .unwrap_or_else(|| panic!("{group_name}: a case without alertname"));
            let mut firing = Vec::new();
            for alert in case
                .get("exp_alerts")
                .map(yaml::Read::list)
                .unwrap_or_default()
            {
                let annotation = |key| {
                    alert
                        .get("exp_annotations")
                        .and_then(|annotations| annotations.get(key))
                        .and_then(yaml::Read::text)
                        .unwrap_or_default()
                };
                // Without them, a firing case would only check that
                // something fired, not what it says.
                assert!(
                    !annotation("summary").is_empty() && !annotation("description").is_empty(),
                    "{group_name}: {alertname} expected without its exact annotations"
                );
                let severity = alert
                    .get("exp_labels")
                    .and_then(|labels| labels.get("severity"))
                    .and_then(yaml::Read::text)
                    .unwrap_or_else(|| {
                        panic!("{group_name}: {alertname} expected without its labels")
                    });
                firing.push(severity.to_owned());
            }
            cases.push(AlertCase {
                group: group_name.to_owned(),
                alertname: alertname.to_owned(),
                firing,
            });
        }
    }
    cases
}

#[test]
fn every_alert_is_tested_firing_and_not_firing() {
    let rules = alert_rules();
    let cases = alert_cases();
    // A case for a misspelt alert expects nothing and so passes whatever
    // the rules do.
    for case in &cases {
        assert!(
            rules.iter().any(|rule| rule.name == case.alertname),
            "{}: no alert named {}",
            case.group,
            case.alertname
        );
    }
    // The same name may come at two severities (warning and critical): each
    // rule needs a case where its severity fires and one where it does not.
    let mut untested = Vec::new();
    for rule in &rules {
        let of_rule = || cases.iter().filter(|case| case.alertname == rule.name);
        if !of_rule().any(|case| case.firing.contains(&rule.severity)) {
            untested.push(format!("{} ({}) never fires", rule.name, rule.severity));
        }
        if !of_rule().any(|case| !case.firing.contains(&rule.severity)) {
            untested.push(format!(
                "{} ({}) is never tested quiet",
                rule.name, rule.severity
            ));
        }
    }
    assert!(untested.is_empty(), "in {RULE_TESTS}: {untested:#?}");
}

/// The dashboard, parsed.
fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is JSON")
}

/// The panels of the dashboard that show data (not its rows).
fn data_panels(dashboard: &serde_json::Value) -> Vec<&serde_json::Value> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .filter(|panel| panel["type"] != "row")
        .collect()
}

/// Every PromQL query of the dashboard: its panels' and its variables'.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<String> {
    let mut queries: Vec<String> = data_panels(dashboard)
        .iter()
        .flat_map(|panel| panel["targets"].as_array().expect("targets"))
        .map(|target| target["expr"].as_str().expect("expr").to_owned())
        .collect();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if variable["type"] == "query" {
            queries.push(variable["definition"].as_str().expect("query").to_owned());
        }
    }
    queries
}

#[test]
fn the_dashboard_is_well_formed_and_its_queries_are_promql() {
    let dashboard = dashboard();
    assert!(
        dashboard["schemaVersion"].as_u64() >= Some(39),
        "a current Grafana's schema (11 or later)"
    );
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|variable| variable["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    assert_eq!(variable("datasource")["type"], "datasource");
    assert_eq!(variable("datasource")["query"], "prometheus");
    assert_eq!(variable("instance")["type"], "query");

    // Panels on Grafana's 24-column grid, none over another, each with a
    // unique id, the templated data source, and queries with unique refIds
    // that select the chosen instances.
    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("title");
        assert!(ids.insert(panel["id"].as_u64()), "{title}: id used twice");
        let at = |key: &str| panel["gridPos"][key].as_u64().expect("gridPos");
        assert!(at("x") + at("w") <= 24, "{title}: off the grid");
        for x in at("x")..at("x") + at("w") {
            for y in at("y")..at("y") + at("h") {
                assert!(cells.insert((x, y)), "{title} covers another panel");
            }
        }
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let mut ref_ids = BTreeSet::new();
        for target in panel["targets"].as_array().expect("targets") {
            assert!(ref_ids.insert(target["refId"].as_str()), "{title}: refId");
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            let expr = target["expr"].as_str().expect("expr");
            assert!(expr.contains(r#"instance=~"$instance""#), "{title}: {expr}");
        }
        assert!(!ref_ids.is_empty(), "{title}: no query");
    }

    // promtool parses PromQL in rule files: each query, with Grafana's
    // variables replaced by what Grafana would put there, as a recording
    // rule of a file of its own.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (n, query) in dashboard_queries(&dashboard).iter().enumerate() {
        if query.starts_with("label_values(") {
            continue;
        }
        let query = query
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*");
        assert!(!query.contains('$'), "a variable left in {query}");
        rules.push_str(&format!(
            "      - record: dashboard:query_{n}\n        expr: '{}'\n",
            query.replace('\'', "''")
        ));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dashboard.rules.yml");
    std::fs::write(&file, rules).expect("write");
    promtool_succeeds(&["check", "rules", file.to_str().expect("a UTF-8 path")]);
}

/// The metric names in a PromQL expression: identifiers starting with
/// `nea_` or `process_`, outside strings, label matchers and label lists,
/// and not followed by `(` (a function).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut braces = 0_usize;
    // Inside `by (...)`, `without (...)`, `on (...)` and the like, whose
    // identifiers are labels.
    let mut in_label_list = false;
    let mut last_word = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                continue;
            }
            '{' => braces += 1,
            '}' => braces = braces.saturating_sub(1),
            '(' if matches!(
                last_word.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) =>
            {
                in_label_list = true;
            }
            ')' => in_label_list = false,
            _ => {}
        }
        if (c.is_ascii_alphabetic() || c == '_' || c == ':')
            && (i == 0 || !(is_name_char(chars[i - 1]) || chars[i - 1] == '$'))
        {
            let start = i;
            while i < chars.len() && is_name_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if braces == 0
                && !in_label_list
                && next != Some(&'(')
                && (word.starts_with("nea_") || word.starts_with("process_"))
            {
                names.insert(word.clone());
            }
            last_word = word;
            continue;
        }
        if !c.is_whitespace() {
            last_word.clear();
        }
        i += 1;
    }
    names
}

#[test]
fn metric_names_are_read_from_promql_conservatively() {
    let names = |expr| metric_names(expr).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"sum without (reason) (rate(nea_handshake_failures_total{reason=~"nea_x|y"}[5m])) / rate(nea_connections_total[5m]) > 0.1"#
        ),
        ["nea_connections_total", "nea_handshake_failures_total"]
    );
    assert_eq!(
        names(
            "histogram_quantile(0.99, sum by (instance, le) (rate(nea_date_lateness_seconds_bucket[$__rate_interval])))"
        ),
        ["nea_date_lateness_seconds_bucket"]
    );
    assert_eq!(
        names("time() - process_start_time_seconds and on (nea_label) nea_build_info"),
        ["nea_build_info", "process_start_time_seconds"]
    );
    assert_eq!(
        names("label_values(nea_clients_connected, instance)"),
        ["nea_clients_connected"]
    );
}

/// The sample names of a scrape in the Prometheus text format.
fn sample_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_metric_the_rules_and_dashboard_use_is_in_a_live_scrape() {
    let dashboard = dashboard();
    let mut used = BTreeSet::new();
    for rule in alert_rules() {
        used.extend(metric_names(&rule.expr));
    }
    for query in dashboard_queries(&dashboard) {
        used.extend(metric_names(&query));
    }
    // Every label value is exported at 0 from the start: a fresh server's
    // scrape has every series.
    let (server, admin) = start_with_admin(&[]);

    let deadline = Instant::now() + PATIENCE;
    let (scraped, missing) = loop {
        let (status, text) = get(admin, "/metrics");
        assert_eq!(status, 200);
        let scraped = sample_names(&text);
        let missing: Vec<_> = used
            .iter()
            .filter(|name| !scraped.contains(*name))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break (scraped, missing);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        missing.is_empty(),
        "the rules or the dashboard use metrics the server does not export: {missing:?}\nscraped: {scraped:#?}"
    );
    // The other way round: the dashboard shows every metric the server
    // exports (a histogram through any of its samples), so that a new one
    // is not forgotten.
    let (_, text) = get(admin, "/metrics");
    let on_dashboard: BTreeSet<String> = dashboard_queries(&dashboard)
        .iter()
        .flat_map(|query| metric_names(query))
        .collect();
    let unshown: Vec<_> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|declared| declared.split(' ').next())
        .filter(|family| {
            !on_dashboard.iter().any(|name| {
                name.as_str() == *family
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| *name == format!("{family}{suffix}"))
            })
        })
        .collect();
    assert!(
        unshown.is_empty(),
        "exported but on no panel of {DASHBOARD}: {unshown:?}"
    );
    assert!(server.stop().success());
}

/// The rules and their tests, read as YAML (yaml-rust2), through the few
/// questions the checks here ask of them.
mod yaml {
    pub use yaml_rust2::Yaml;

    /// The one document of `text`.
    pub fn parse(text: &str) -> Yaml {
        let mut documents = yaml_rust2::YamlLoader::load_from_str(text)
            .unwrap_or_else(|err| panic!("not YAML: {err}"));
        assert_eq!(documents.len(), 1, "one YAML document");
        documents.remove(0)
    }

    /// Questions asked of a YAML value.
    pub trait Read {
        /// The value of `key`, in a mapping.
        fn get(&self, key: &str) -> Option<&Yaml>;
        /// The items of a sequence; an empty value (`key:` alone) has none.
        fn list(&self) -> Vec<&Yaml>;
        /// The text of a scalar.
        fn text(&self) -> Option<&str>;
    }

    impl Read for Yaml {
        fn get(&self, key: &str) -> Option<&Yaml> {
            self.as_hash()?.get(&Self::String(key.to_owned()))
        }

        fn list(&self) -> Vec<&Yaml> {
            match self {
                Self::Array(items) => items.iter().collect(),
                Self::Null => Vec::new(),
                other => panic!("not a list: {other:?}"),
            }
        }

        fn text(&self) -> Option<&str> {
            self.as_str()
        }
    }
}
