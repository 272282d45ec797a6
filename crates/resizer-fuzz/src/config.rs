//! The configuration loader: a TOML file and `RESIZER_*` variables.

use resizer::config::{Config, Overrides};

use crate::split_once;

/// A config file, a NUL, then environment lines (`NAME=value`). The loader
/// answers a valid configuration or an error, and a configuration it
/// accepts is one it accepts again when printed and loaded back.
pub fn config(data: &[u8]) {
    let (file, env) = split_once(data, 0);
    let (Ok(file), Ok(env)) = (std::str::from_utf8(file), std::str::from_utf8(env)) else {
        return;
    };
    let env: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let Ok(config) = Config::from_layers(Some(file), &Overrides::default(), env) else {
        return;
    };
    let printed = toml::to_string(&config).expect("a loaded config prints");
    let again = Config::from_layers(Some(&printed), &Overrides::default(), Vec::new())
        .unwrap_or_else(|e| panic!("a loaded config does not load back: {e:#}\n{printed}"));
    assert_eq!(toml::to_string(&again).expect("prints"), printed);
}
