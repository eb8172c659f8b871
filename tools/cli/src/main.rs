//! `alexnet`: make, inspect and run AlexNet model blobs with `alexnet-core`.

mod convert;
mod diff;
mod eval;
mod export_c;
mod extract;
mod infer;
mod info;
mod init;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "alexnet",
    version,
    about = "Make, inspect and run AlexNet model blobs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a blob with random weights (the paper's initialization) for a built-in net.
    Init {
        /// Built-in architecture: paper, caffe, torchvision or micro.
        #[arg(long, default_value = "paper")]
        arch: String,
        /// Random seed; the same seed gives the same blob.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Turn f32 weights into a blob: a PyTorch checkpoint (`torch.save`d state_dict), a
    /// safetensors file, or an ONNX model of an AlexNet-family graph (the net is built from its
    /// nodes). The format is told by the file's content.
    Convert {
        /// The weights.
        input: PathBuf,
        /// The output blob.
        #[arg(short, long)]
        output: PathBuf,
        /// Built-in architecture (paper, caffe, torchvision, micro): needed for PyTorch and
        /// safetensors files; for ONNX, checks that the graph is that net.
        #[arg(long)]
        arch: Option<String>,
        #[command(flatten)]
        overrides: convert::Overrides,
    },
    /// Write an f32 blob's model as ONNX (runs in ONNX Runtime; the graph ends at the logits)
    /// or as safetensors (PyTorch's state_dict names for torchvision's net), by the output's
    /// extension.
    Export {
        /// The f32 model blob.
        model: PathBuf,
        /// `OUT.onnx` or `OUT.safetensors`.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Print a blob's layer table: output shapes, parameters, MACs, arena bytes.
    Info {
        /// Model blob.
        model: PathBuf,
    },
    /// Classify images (JPEG, PNG, BMP, WebP, GIF, TIFF, PGM/PPM) with an f32 or int8 blob and
    /// print the top classes. A file that cannot be read or decoded is skipped with its
    /// reason; the exit status is 1 when any was.
    Infer {
        /// Model blob.
        model: PathBuf,
        /// Images to classify, and folders searched recursively for images.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// How many classes to print per image.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// Write the logits of the classified images as a NumPy array `[images, classes]`,
        /// and their paths, in the same order, beside it (`<name>.paths.txt`).
        #[arg(long)]
        logits_out: Option<PathBuf>,
        /// One JSON line per image (path, precision, time, top classes with label, logit and
        /// probability) instead of the table.
        #[arg(long)]
        json: bool,
        /// Threads per forward pass (each layer's outputs split between them; the logits are
        /// bit-identical to one thread's) [default: one per core; one for nets under 100 M MACs].
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Top-1/top-5 accuracy of a blob (f32 or int8) through the core: on a labelled IDX set
    /// (Fashion-MNIST's test split), or on an image folder, either one subfolder per class
    /// (`val/<class>/...`) or a flat folder with ILSVRC's ground-truth file. Centre crop, or
    /// the paper's ten crops; a file that cannot be decoded is skipped, counted, and makes the
    /// exit status 1.
    Eval {
        /// Model blob.
        model: PathBuf,
        /// An IDX image file (plain or gzip), or a folder of images.
        #[arg(long)]
        images: PathBuf,
        /// For IDX images, the IDX label file; for a flat folder, one class per line in
        /// sorted file order (an index, or a class name).
        #[arg(long)]
        labels: Option<PathBuf>,
        /// WordNet IDs, one per line: the labels file's numbers are 1-based IDs into it (for
        /// ILSVRC 2012's devkit ground truth: the synsets in the devkit's ID order), and the
        /// model's classes are the sorted IDs; labels given as WordNet IDs need any list of
        /// them (`LOC_synset_mapping.txt`).
        #[arg(long)]
        synsets: Option<PathBuf>,
        /// Evaluate at most N images (spread over the folder's classes) [default: all].
        #[arg(long, alias = "count")]
        limit: Option<usize>,
        /// Threads per forward pass, as for `infer` [default: one per core; one for nets under
        /// 100 M MACs].
        #[arg(long)]
        threads: Option<usize>,
        /// The paper's ten crops (four corners and the centre, and their mirror images),
        /// their softmax outputs averaged.
        #[arg(long)]
        ten_crop: bool,
        /// Write per-class accuracy as CSV.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Draw the confusion matrix as a PNG (sets of at most 50 classes).
        #[arg(long)]
        confusion: Option<PathBuf>,
    },
    /// Compare an f32 blob and its int8 quantization layer by layer on one image: largest
    /// error, SQNR and error in output steps (LSB) per layer, and both top-5.
    Diff {
        /// The f32 model.
        f32_model: PathBuf,
        /// The int8 model made from it by `quantize`.
        int8_model: PathBuf,
        /// Image (JPEG, PNG, or binary PGM/PPM).
        image: PathBuf,
    },
    /// Write a model blob as a C header: a 64-byte-aligned `const uint8_t` array with its
    /// length, architecture and precision as macros, for C firmware (docs/c-api.md).
    ExportC {
        /// The model blob (checked before it is written).
        model: PathBuf,
        /// The header to write.
        #[arg(short, long)]
        output: PathBuf,
        /// The array's name, also the stem of its macros [default: the blob's file name,
        /// e.g. micro-int8.blob -> micro_int8, MICRO_INT8_LEN].
        #[arg(long)]
        name: Option<String>,
    },
    /// Write images of an IDX file (MNIST, Fashion-MNIST; gzip or plain) as PNG files named
    /// `<index>_<label>.png`, to make real test images for `infer`.
    ExtractIdx {
        /// IDX image file (`*-images-idx3-ubyte[.gz]`).
        images: PathBuf,
        /// Matching IDX label file, to put the label in the names.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// First image to write.
        #[arg(long, default_value_t = 0)]
        first: usize,
        /// Number of images to write.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Enlarge each image this many times (nearest neighbour), e.g. 8 for ImageNet-sized
        /// nets.
        #[arg(long, default_value_t = 1)]
        scale: u32,
        /// Write each image into a subfolder named by its label (`<out>/<label>/`), the
        /// layout `alexnet eval` (and torchvision's ImageFolder) reads.
        #[arg(long)]
        class_folders: bool,
        /// Output folder (created if missing).
        #[arg(short, long)]
        out_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any float work: in another mode the f32 results would differ silently.
    if let Err(e) = alexnet_host::fpenv::check() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Init { arch, seed, output } => init::run(&arch, seed, &output),
        Command::Convert {
            input,
            output,
            arch,
            overrides,
        } => convert::convert(&input, arch.as_deref(), &overrides, &output),
        Command::Export { model, output } => convert::export(&model, &output),
        Command::Info { model } => info::run(&model),
        Command::Infer {
            model,
            images,
            top,
            logits_out,
            threads,
            json,
        } => infer::run(&model, &images, top, logits_out.as_deref(), threads, json),
        Command::Eval {
            model,
            images,
            labels,
            synsets,
            limit,
            threads,
            ten_crop,
            csv,
            confusion,
        } => eval::run(&eval::Request {
            model: &model,
            images: &images,
            labels: labels.as_deref(),
            synsets: synsets.as_deref(),
            limit,
            threads,
            ten_crop,
            csv: csv.as_deref(),
            confusion: confusion.as_deref(),
        }),
        Command::Diff {
            f32_model,
            int8_model,
            image,
        } => diff::run(&f32_model, &int8_model, &image),
        Command::ExportC {
            model,
            output,
            name,
        } => export_c::run(&model, &output, name.as_deref()),
        Command::ExtractIdx {
            images,
            labels,
            first,
            count,
            scale,
            class_folders,
            out_dir,
        } => extract::run(
            &images,
            labels.as_deref(),
            first,
            count,
            scale,
            class_folders,
            &out_dir,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
