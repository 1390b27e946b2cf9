"""Independent check of a granq-trained resnet20-b (the pytorchcv CIFAR ResNet-20 layout, 1x1-conv+BN projection
shortcuts) in PyTorch: loads the .safetensors by name (every key, nothing left over) and its sidecar's mean/std, and
prints the CIFAR-10 test top-1. Usage: /usr/bin/python3 scripts/torch-reference/eval_resnet20b.py MODEL.safetensors DATA_DIR"""
import json, sys

import numpy as np
import torch
import torch.nn as nn

from released_quant import load_safetensors


class ConvBlock(nn.Module):
    def __init__(self, cin, cout, k, stride, relu):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = relu

    def forward(self, x):
        x = self.bn(self.conv(x))
        return torch.relu(x) if self.relu else x


class Body(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = ConvBlock(cin, cout, 3, stride, True)
        self.conv2 = ConvBlock(cout, cout, 3, 1, False)

    def forward(self, x):
        return self.conv2(self.conv1(x))


class Unit(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = Body(cin, cout, stride)
        self.resize = cin != cout or stride != 1
        if self.resize:
            self.identity_conv = ConvBlock(cin, cout, 1, stride, False)

    def forward(self, x):
        identity = self.identity_conv(x) if self.resize else x
        return torch.relu(self.body(x) + identity)


class ResNet20b(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module('init_block', nn.Sequential())
        self.features.init_block.add_module('conv', ConvBlock(3, 16, 3, 1, True))
        cin = 16
        for s, cout in enumerate([16, 32, 64]):
            stage = nn.Sequential()
            for u in range(3):
                stage.add_module(f'unit{u + 1}', Unit(cin, cout, 2 if (u == 0 and s > 0) else 1))
                cin = cout
            self.features.add_module(f'stage{s + 1}', stage)
        self.features.add_module('final_pool', nn.AvgPool2d(8))
        self.output = nn.Linear(64, classes)

    def forward(self, x):
        return self.output(self.features(x).flatten(1))


def main(model_path, data_dir):
    state = load_safetensors(model_path)
    sidecar = json.load(open(model_path[:-len('.safetensors')] + '.json'))
    net = ResNet20b(sidecar['num_classes'])
    wanted = {k: v for k, v in net.state_dict().items() if not k.endswith('num_batches_tracked')}
    assert set(wanted) == set(state), set(wanted) ^ set(state)
    net.load_state_dict(state, strict=False)
    net.eval()
    rec = np.fromfile(f'{data_dir}/test_batch.bin', dtype=np.uint8).reshape(10000, 3073)
    labels = torch.from_numpy(rec[:, 0].astype(np.int64))
    x = torch.from_numpy(rec[:, 1:].reshape(10000, 3, 32, 32).astype(np.float32) / 255)
    mean = torch.tensor(sidecar['input']['mean']).view(1, 3, 1, 1)
    std = torch.tensor(sidecar['input']['std']).view(1, 3, 1, 1)
    x = (x - mean) / std
    with torch.no_grad():
        pred = torch.cat([net(x[i:i + 500]).argmax(1) for i in range(0, 10000, 500)])
    correct = int((pred == labels).sum())
    print(json.dumps({'framework': f'torch {torch.__version__}', 'images': 10000, 'correct': correct,
                      'top1': correct / 10000, 'sidecar_measured_top1': sidecar.get('measured_top1')}))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
