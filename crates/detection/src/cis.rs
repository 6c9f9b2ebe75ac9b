//! The CIS AWS Foundations Benchmark's CloudWatch metric filters (section 4 of v1.4–v2.0,
//! section 3 of v1.2) and its alarm recipe, as data. The pattern strings are exactly those of
//! `data/cis/patterns.json` (CIS v2.0.0 text via mitre/aws-foundations-cis-baseline, AWS
//! Security Hub controls CloudWatch.1–14); Security Hub fails a control unless the exact CIS
//! filter is used, so they are kept byte for byte, odd spacing included.

/// One CIS metric filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CisMetricFilter {
    /// The recommendation's id in CIS v1.4–v2.0 (`4.1`–`4.15`), or a variant's id.
    pub id: &'static str,
    /// The same recommendation's id in CIS v1.2 (`3.1`–`3.14`), where it has one.
    pub cis_v1_2_id: Option<&'static str>,
    pub title: &'static str,
    /// The filter pattern, exactly as CIS writes it.
    pub pattern: &'static str,
    /// For a variant, the id of the filter it is a form of.
    pub variant_of: Option<&'static str>,
}

/// How CIS alarms on each metric filter: the filter's metric counts 1 per matching record, and
/// the alarm fires when the sum over one 300-second period reaches 1, after 1 such period
/// (`--statistic Sum --period 300 --threshold 1 --comparison-operator
/// GreaterThanOrEqualToThreshold --evaluation-periods 1`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CisAlarmRecipe {
    /// What one matching record adds to the metric.
    pub metric_value: f64,
    /// The namespace CIS's remediation text uses.
    pub metric_namespace: &'static str,
    pub statistic: &'static str,
    pub period_seconds: u32,
    pub threshold: f64,
    pub comparison_operator: &'static str,
    pub evaluation_periods: u32,
}

impl CisAlarmRecipe {
    /// Whether one period's sum breaches the threshold (`GreaterThanOrEqualToThreshold`).
    pub fn breaches(&self, period_sum: f64) -> bool {
        period_sum >= self.threshold
    }
}

/// The alarm recipe shared by every CIS metric filter.
pub const CIS_ALARM_RECIPE: CisAlarmRecipe = CisAlarmRecipe {
    metric_value: 1.0,
    metric_namespace: "CISBenchmark",
    statistic: "Sum",
    period_seconds: 300,
    threshold: 1.0,
    comparison_operator: "GreaterThanOrEqualToThreshold",
    evaluation_periods: 1,
};

/// The 15 metric filters of CIS v2.0, 4.1 to 4.15, in order.
pub fn cis_metric_filters() -> &'static [CisMetricFilter] {
    &CIS_METRIC_FILTERS
}

/// Two other forms kept for comparison: 4.1 as CIS v1.2 and Security Hub's CloudWatch.2 write
/// it, and the SSO-friendly form of 4.2 (IAM users' successful sign-ins only).
pub fn cis_metric_filter_variants() -> &'static [CisMetricFilter] {
    &CIS_METRIC_FILTER_VARIANTS
}

const CIS_METRIC_FILTERS: [CisMetricFilter; 15] = [
    CisMetricFilter {
        id: "4.1",
        cis_v1_2_id: Some("3.1"),
        title: "Unauthorized API calls (CIS v2.0 text form)",
        pattern: r#"{ ($.errorCode ="*UnauthorizedOperation") || ($.errorCode ="AccessDenied*") && ($.sourceIPAddress!="delivery.logs.amazonaws.com") && ($.eventName!="HeadBucket") }"#,
        variant_of: None,
    },
    CisMetricFilter {
        id: "4.2",
        cis_v1_2_id: Some("3.2"),
        title: "Management console sign-in without MFA",
        pattern: r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") }"#,
        variant_of: None,
    },
    CisMetricFilter {
        id: "4.3",
        cis_v1_2_id: Some("3.3"),
        title: "Usage of the root account",
        pattern: r#"{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }"#,
        variant_of: None,
    },
    CisMetricFilter {
        id: "4.4",
        cis_v1_2_id: Some("3.4"),
        title: "IAM policy changes",
        pattern: r#"{($.eventName=DeleteGroupPolicy)||($.eventName=DeleteRolePolicy)||($.eventName=DeleteUserPolicy)||($.eventName=PutGroupPolicy)||($.eventName=PutRolePolicy)||($.eventName=PutUserPolicy)||($.eventName=CreatePolicy)||($.eventName=DeletePolicy)||($.eventName=CreatePolicyVersion)||($.eventName=DeletePolicyVersion)||($.eventName=AttachRolePolicy)||($.eventName=DetachRolePolicy)||($.eventName=AttachUserPolicy)||($.eventName=DetachUserPolicy)||($.eventName=AttachGroupPolicy)||($.eventName=DetachGroupPolicy)}"#,
        variant_of: None,
    },
    CisMetricFilter {
        id: "4.5",
        cis_v1_2_id: Some("3.5"),
        title: "CloudTrail configuration changes",
        pattern: r#"{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || ($.eventName = StartLogging) || ($.eventName = StopLogging) }"#,
        variant_of: None,
    },
    CisMetricFilter {
        id: "4.6",
        cis_v1_2_id: Some("3.6"),
        title: "Management console authentication failures",
        pattern: r#"{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }"#,
        variant_of: None,
    },
    CisMetricFilter {
        id: "4.7",
        cis_v1_2_id: Some("3.7"),
        title: "Disabling or scheduled deletion of customer-created CMKs",
        pattern: r#"{ ($.eventSource = kms.amazonaws.com) && (($.eventName = DisableKey) || ($.eventName = ScheduleKeyDeletion)) }"#,
        variant_of: None,
    },
    CisMetricFilter {
        id: "4.8",
        cis_v1_2_id: Some("3.8"),
        title: "S3 bucket policy changes",
        pattern: r#"{ ($.eventSource = s3.amazonaws.com) && (($.eventName = PutBucketAcl) || ($.eventName = PutBucketPolicy) || ($.eventName = PutBucketCors) || ($.eventName = PutBucketLifecycle) || ($.eventName = PutBucketReplication) || ($.eventName = DeleteBucketPolicy) || ($.eventName = DeleteBucketCors) || ($.eventName = DeleteBucketLifecycle) || ($.eventName = DeleteBucketReplication)) }"#,
        variant_of: None,
    },
    CisMetricFilter {
        id: "4.9",
        cis_v1_2_id: Some("3.9"),
        title: "AWS Config configuration changes",
        pattern: r#"{ ($.eventSource = config.amazonaws.com) && (($.eventName=StopConfigurationRecorder)||($.eventName=DeleteDeliveryChannel)||($.eventName=PutDeliveryChannel)||($.eventName=PutConfigurationRecorder)) }"#,
        variant_of: None,
    },
    CisMetricFilter {
        id: "4.10",
        cis_v1_2_id: Some("3.10"),
        title: "Security group changes",
        pattern: r#"{ ($.eventName = AuthorizeSecurityGroupIngress) || ($.eventName = AuthorizeSecurityGroupEgress) || ($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || ($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) }"#,
        variant_of: None,
    },
    CisMetricFilter {
        id: "4.11",
        cis_v1_2_id: Some("3.11"),
        title: "Network ACL changes",
        pattern: r#"{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) || ($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry) || ($.eventName = ReplaceNetworkAclEntry) || ($.eventName = ReplaceNetworkAclAssociation) }"#,
        variant_of: None,
    },
    CisMetricFilter {
        id: "4.12",
        cis_v1_2_id: Some("3.12"),
        title: "Changes to network gateways",
        pattern: r#"{ ($.eventName = CreateCustomerGateway) || ($.eventName = DeleteCustomerGateway) || ($.eventName = AttachInternetGateway) || ($.eventName = CreateInternetGateway) || ($.eventName = DeleteInternetGateway) || ($.eventName = DetachInternetGateway) }"#,
        variant_of: None,
    },
    CisMetricFilter {
        id: "4.13",
        cis_v1_2_id: Some("3.13"),
        title: "Route table changes",
        pattern: r#"{ ($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }"#,
        variant_of: None,
    },
    CisMetricFilter {
        id: "4.14",
        cis_v1_2_id: Some("3.14"),
        title: "VPC changes",
        pattern: r#"{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || ($.eventName = ModifyVpcAttribute) || ($.eventName = AcceptVpcPeeringConnection) || ($.eventName = CreateVpcPeeringConnection) || ($.eventName = DeleteVpcPeeringConnection) || ($.eventName = RejectVpcPeeringConnection) || ($.eventName = AttachClassicLinkVpc) || ($.eventName = DetachClassicLinkVpc) || ($.eventName = DisableVpcClassicLink) || ($.eventName = EnableVpcClassicLink) }"#,
        variant_of: None,
    },
    CisMetricFilter {
        id: "4.15",
        cis_v1_2_id: None,
        title: "AWS Organizations changes",
        pattern: r#"{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") || ($.eventName = "AttachPolicy") || ($.eventName = "CreateAccount") || ($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || ($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || ($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || ($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || ($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || ($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || ($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || ($.eventName = "UpdateOrganizationalUnit")) }"#,
        variant_of: None,
    },
];

const CIS_METRIC_FILTER_VARIANTS: [CisMetricFilter; 2] = [
    CisMetricFilter {
        id: "4.1-v1.2",
        cis_v1_2_id: Some("3.1"),
        title: "Unauthorized API calls (CIS v1.2 form; Security Hub CloudWatch.2)",
        pattern: r#"{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }"#,
        variant_of: Some("4.1"),
    },
    CisMetricFilter {
        id: "4.2-sso",
        cis_v1_2_id: Some("3.2"),
        title: "Management console sign-in without MFA (SSO-friendly variant: IAMUser, Success)",
        pattern: r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }"#,
        variant_of: Some("4.2"),
    },
];

#[cfg(test)]
mod tests {
    use super::{cis_metric_filter_variants, cis_metric_filters, CIS_ALARM_RECIPE};
    use crate::FilterPattern;

    const PATTERNS_JSON: &str = include_str!("../../../data/cis/patterns.json");

    #[test]
    fn every_cis_pattern_parses() {
        for filter in cis_metric_filters()
            .iter()
            .chain(cis_metric_filter_variants())
        {
            if let Err(error) = FilterPattern::parse(filter.pattern) {
                panic!("CIS {} does not parse: {error}", filter.id);
            }
        }
    }

    #[test]
    fn the_primary_filters_are_4_1_to_4_15_in_order() {
        let ids: Vec<&str> = cis_metric_filters()
            .iter()
            .map(|filter| filter.id)
            .collect();
        let expected: Vec<String> = (1..=15).map(|number| format!("4.{number}")).collect();
        assert_eq!(ids, expected);
        assert!(cis_metric_filters()
            .iter()
            .all(|filter| filter.variant_of.is_none()));
        assert!(cis_metric_filter_variants()
            .iter()
            .all(|filter| filter.variant_of.is_some()));
    }

    #[test]
    fn the_filters_are_exactly_those_of_the_patterns_file() {
        let file: serde_json::Value = serde_json::from_str(PATTERNS_JSON).unwrap();
        let entries = file["patterns"].as_array().unwrap();
        assert_eq!(
            entries.len(),
            cis_metric_filters().len() + cis_metric_filter_variants().len()
        );
        for entry in entries {
            let id = entry["id"].as_str().unwrap();
            let primary = entry["primary"].as_bool().unwrap();
            let list = if primary {
                cis_metric_filters()
            } else {
                cis_metric_filter_variants()
            };
            let filter = list.iter().find(|filter| filter.id == id).unwrap();
            assert_eq!(filter.pattern, entry["pattern"].as_str().unwrap(), "{id}");
            assert_eq!(filter.title, entry["title"].as_str().unwrap(), "{id}");
            assert_eq!(filter.cis_v1_2_id, entry["cis_v1_2_id"].as_str(), "{id}");
            assert_eq!(filter.variant_of, entry["variant_of"].as_str(), "{id}");
        }
    }

    #[test]
    fn one_matching_record_in_a_period_fires_the_alarm() {
        assert!(!CIS_ALARM_RECIPE.breaches(0.0));
        assert!(CIS_ALARM_RECIPE.breaches(CIS_ALARM_RECIPE.metric_value));
        assert_eq!(CIS_ALARM_RECIPE.period_seconds, 300);
        assert_eq!(CIS_ALARM_RECIPE.evaluation_periods, 1);
    }
}
