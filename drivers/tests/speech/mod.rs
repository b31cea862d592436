//! Speech for the DTMF talk-off tests, shared by `drivers/tests/dtmf_talkoff.rs` and
//! `drivers/examples/make_talkoff_speech.rs` (which writes the shipped file
//! `drivers/tests/data/talkoff-speech.wav`). Speech is synthesised with espeak-ng.

#![allow(dead_code)]

use std::process::Command;

use hotline_drivers::dsp::resample::{resample, to_mono};
use hotline_drivers::dsp::wav::read_wav;
use hotline_drivers::{FRAME_SAMPLES, SAMPLE_RATE};

pub const ENGLISH: &[&str] = &[
    "Thank you for calling the customer service centre. Your call is important to us. \
     All of our agents are currently busy helping other customers, so please stay on the \
     line and the next available agent will answer your call. Calls may be recorded for \
     training and quality purposes. If you would like us to call you back instead, you can \
     leave your name and number after the tone, and we will return your call within one \
     working day.",
    "Well, I tried to pay the bill on Monday morning, but the website kept saying my \
     session had expired. Then my neighbour suggested I should phone instead, so here I am. \
     The account is in my husband's name, although both of us use it. Could you check \
     whether the payment went through? Oh, and while I have you, the last invoice seemed \
     much higher than usual. We were away for three weeks in August, so that can't be right.",
    "My card number is four five three two, seven seven one eight, zero zero nine six, \
     two two four one. The expiry date is oh nine twenty eight. My phone number is \
     oh one six one, four nine six, eight eight three two, and my postcode is M one four, \
     five A B. The reference on the letter is nine eight seven six five four three two one \
     zero, hash, star, one hundred and twenty three thousand, four hundred and fifty six.",
    "Hello? Hello, can you hear me? The line is really bad today, it keeps cutting out. \
     Yes, yes, that's right. No, not that one, the other one, the blue one. Hmm. Let me \
     think about it. Actually, could you say that again, slowly please? Sorry, I was \
     distracted, the children are shouting in the background. Okay. Okay, great. Brilliant. \
     Cheers, thanks very much, bye bye now, bye.",
    "The weather forecast for tomorrow: cloudy at first, with sunny spells developing \
     during the afternoon. Highs of nineteen degrees, lows of eleven. Winds light and \
     variable. On the roads, there are delays on the ring road near junction seven because \
     of roadworks, and the northbound carriageway is closed between exits twelve and \
     fourteen overnight. Trains are running normally, but the last ferry will leave at \
     ten fifteen.",
];

pub const MANDARIN: &[&str] = &[
    "您好，欢迎致电客户服务中心。查询账户余额请按一，办理业务请按二，人工服务请按零。\
     我们的客服人员正在忙线中，请您耐心等候，我们将尽快为您服务。",
    "喂，你好，我想问一下我的快递到哪里了。单号是七三八二九五零零四六一，\
     昨天说今天下午送到，可是现在还没有消息。我的电话是一三九八八七六五四三二，\
     麻烦你帮我查一下，谢谢。",
    "今天北京天气晴转多云，最高气温二十六度，最低气温十五度，北风三到四级。\
     明天有小雨，出门请记得带伞。周末气温回升，适合外出游玩。",
    "好的，没问题。对，对，就是这个。不是，不是那个，是另外一个。嗯，让我想一想。\
     你说得太快了，能不能再说一遍？好，好，我明白了，谢谢你，再见。",
];

/// (voice, words per minute, pitch 0-99).
pub const ENGLISH_VOICES: &[(&str, u32, u32)] = &[
    ("en-us", 175, 50),
    ("en-gb+f3", 150, 70),
    ("en-us+f4", 210, 85),
    ("en-gb+m3", 130, 30),
    ("en-us+klatt", 190, 60),
    ("en-us+Annie", 175, 70),
    ("en-us+f5", 230, 95),
    ("en-gb+f1", 120, 80),
    ("en-us+m1", 160, 20),
];
pub const MANDARIN_VOICES: &[(&str, u32, u32)] =
    &[("cmn", 175, 50), ("cmn+f3", 160, 80), ("cmn+m2", 200, 35), ("cmn+f1", 150, 99)];

/// What goes into the shipped file: (voice, words per minute, pitch, text), one short
/// passage per voice, English and Mandarin, prose and numbers read aloud (about 45 s).
pub const SHIPPED: &[(&str, u32, u32, &str)] = &[
    ("en-us", 175, 50, "Thank you for calling. Your call is important to us. Please stay on the line."),
    ("en-gb+f3", 150, 70, "My card number is four five three two, seven seven one eight."),
    ("en-us+f4", 210, 85, "I tried to pay the bill on Monday, but the website said my session had expired."),
    ("en-gb+m3", 130, 30, "The reference is nine eight seven six, hash, star, one two three."),
    ("en-us+klatt", 190, 60, "Hello? Can you hear me? No, not that one, the blue one."),
    ("en-us+f5", 230, 95, "Highs of nineteen degrees, and the last ferry leaves at ten fifteen."),
    ("en-us+m1", 160, 20, "Okay, great. Cheers, thanks very much, bye bye now."),
    ("cmn", 175, 50, "您好，欢迎致电客户服务中心。人工服务请按零。"),
    ("cmn+f3", 160, 80, "单号是七三八二九五零零四六一。"),
    ("cmn+f1", 150, 99, "好的，没问题。你说得太快了，能不能再说一遍？"),
];

/// Silence between passages in the shipped file.
pub const GAP_MS: usize = 300;

pub fn espeak_present() -> bool {
    Command::new("espeak-ng").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// `text` spoken by espeak-ng, at 8 kHz.
pub fn speak(voice: &str, wpm: u32, pitch: u32, text: &str) -> Vec<i16> {
    let output = Command::new("espeak-ng")
        .args(["-v", voice, "-s", &wpm.to_string(), "-p", &pitch.to_string(), "--stdout", text])
        .output()
        .expect("espeak-ng runs");
    assert!(output.status.success(), "espeak-ng -v {voice}: {}", String::from_utf8_lossy(&output.stderr));
    let (spec, samples) =
        read_wav(&output.stdout).unwrap_or_else(|e| panic!("espeak-ng -v {voice} WAV: {e}"));
    let mono = to_mono(&samples, spec.channels);
    resample(&mono, spec.sample_rate, SAMPLE_RATE).expect("resampled to 8 kHz")
}

const DBM0_RMS: f64 = 22_706.0 / std::f64::consts::SQRT_2;

/// Scales speech so its active level (RMS over the frames within 30 dB of the loudest)
/// is `dbm0`.
pub fn at_level(speech: &[i16], dbm0: f64) -> Vec<i16> {
    let frame_power: Vec<f64> = speech
        .chunks(FRAME_SAMPLES)
        .map(|f| f.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / f.len() as f64)
        .collect();
    let loudest = frame_power.iter().cloned().fold(0.0, f64::max);
    let active: Vec<f64> = frame_power.into_iter().filter(|&p| p > loudest * 1e-3).collect();
    let rms = (active.iter().sum::<f64>() / active.len() as f64).sqrt();
    let gain = DBM0_RMS * 10f64.powf(dbm0 / 20.0) / rms;
    speech.iter().map(|&x| (f64::from(x) * gain).round().clamp(-32768.0, 32767.0) as i16).collect()
}
