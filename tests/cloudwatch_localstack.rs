//! The CloudWatch source against LocalStack's CloudWatch on 127.0.0.1, through the entry
//! points the app uses. The scene is set with the real `aws-sdk-cloudwatch` client.

mod localstack;

use aws_sdk_cloudwatch::types::StateValue;
use localstack::{LocalStack, MetricAlarmSpec, put_metric_alarm, set_alarm_state};

const REGION: &str = "us-east-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_serves_cloudwatch_over_cbor() {
    let server = LocalStack::start();
    let cw = server.cloudwatch(REGION);
    let spec = MetricAlarmSpec::new("etcd-size", "apiserver_storage_size_bytes").cluster("prod-a");
    put_metric_alarm(&cw, REGION, &spec).await;
    set_alarm_state(&cw, "etcd-size", StateValue::Alarm, "by hand").await;
    let out = cw.describe_alarms().send().await.expect("describe");
    let alarm = &out.metric_alarms()[0];
    assert_eq!(alarm.alarm_name(), Some("etcd-size"));
    assert_eq!(alarm.state_value(), Some(&StateValue::Alarm));
}
