//! What real Armory deploy files contain and Armory accepts: the spellings and shapes its own
//! documents and examples use, each accepted and normalised (DEPLOY-CONFIG.md "Leniency").

use crate::support::{assert_error, errors, valid};
use ferry_deploy::{Pause, Step, Strategy};

/// Every leniency at once, as a file written against Armory's documents might hold them.
pub(crate) const LENIENT: &str = "version: v1
kind: kubernetes
application: Potato Facts
context:
  - key: owner
    value: team
targets:
  prod:
    account: prod
    namespace: ns
    strategy: canary
    constraints:
      beforeDeployment:
        - analysis:
            interval: 10
            Units: Seconds
            numberOfJudgmentRuns: 1
            queries: [q]
        - pause:
            untilApproved: true
            approvalExpiration:
              duration: 1
              unit: HOURS
              requiresRoles: [Release Manager]
        - pause:
            untilApproved: true
            approvalDuration:
              duration: 2
              units: hours
manifests:
  - path: manifests/app.yaml
strategies:
  canary:
    canary:
      steps:
        - setWeight: 25
        - pause:
            duration: 1
            units: MINUTES
analysis:
  defaultMetricProviderName: prom
  queries:
    - name: q
      queryTemplate: x
      upperLimit: 1
trafficManagement:
  targets: [prod]
  smi:
    - rootServiceName: web
";

#[test]
fn the_spellings_armory_files_use_are_accepted_and_normalised() {
    let plan = valid(LENIENT);
    assert_eq!(plan.application, "Potato Facts");
    assert_eq!(plan.context.get("owner").map(String::as_str), Some("team"));
    let target = &plan.targets[0];
    let [
        Step::Analysis(analysis),
        Step::Pause {
            pause:
                Pause::UntilApproved {
                    requires_roles,
                    expiration_secs,
                },
        },
        Step::Pause {
            pause:
                Pause::UntilApproved {
                    requires_roles: no_roles,
                    expiration_secs: two_hours,
                },
        },
    ] = target.before_deployment.as_slice()
    else {
        panic!("{:?}", target.before_deployment)
    };
    assert_eq!(analysis.interval_secs, 10, "Units: Seconds");
    assert_eq!(
        requires_roles,
        &["Release Manager"],
        "nested under approvalExpiration"
    );
    assert_eq!(*expiration_secs, Some(3600));
    assert!(no_roles.is_empty());
    assert_eq!(*two_hours, Some(7200), "approvalDuration with units");
    let Strategy::Canary { steps } = &target.strategy else {
        panic!("{:?}", target.strategy)
    };
    assert_eq!(
        steps,
        &[
            Step::SetWeight { weight: 25 },
            Step::Pause {
                pause: Pause::Duration(60)
            }
        ]
    );
    assert_eq!(
        target.traffic_management.smi[0].root_service_name, "web",
        "trafficManagement as a single mapping"
    );
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn lenient_spellings_still_refuse_what_is_ambiguous_or_wrong() {
    // Both spellings of one key: which one is meant?
    let d = errors(&LENIENT.replace(
        "            Units: Seconds\n",
        "            Units: Seconds\n            unit: minutes\n",
    ));
    assert_error(
        &d,
        "targets.prod.constraints.beforeDeployment[0].analysis.units",
        17,
        "duplicate key",
    );
    // A context list item needs both halves, once each.
    let d = errors(&LENIENT.replace(
        "  - key: owner\n    value: team\n",
        "  - key: owner\n  - key: owner\n    value: x\n  - key: owner\n    value: y\n",
    ));
    assert_error(&d, "context[0].value", 5, "missing required key \"value\"");
    assert_error(&d, "context[2].key", 8, "duplicate context key \"owner\"");
    // An unknown unit is still an error, whatever the key's spelling (the path names the key
    // Ferry knows; line and column point at what is written).
    let d = errors(&LENIENT.replace("units: MINUTES", "units: fortnights"));
    assert_error(
        &d,
        "strategies.canary.canary.steps[1].pause.unit",
        39,
        "unknown value \"fortnights\"",
    );
}
